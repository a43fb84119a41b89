//! A form body as [`Event`]s: a pump reads the request body from Pingora into a channel,
//! counted against a cap, and [`FormStream`] feeds it to the bounded [`Parser`]. The two run
//! joined, so the parser never holds the session.

use bytes::Bytes;
use pingora::proxy::Session;
use tokio::sync::mpsc;

use crate::form_data::{parse_boundary, Event, FormError, Parser, LIMITS};
use crate::http_io::{declared_length, header_bytes, BodyError};
use crate::s3_error::S3Error;

pub(super) type Chunk = Result<Bytes, BodyError>;

/// The boundary of this request's `multipart/form-data` body.
pub(super) fn boundary(session: &Session) -> Result<String, S3Error> {
    header_bytes(session, http::header::CONTENT_TYPE)
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(parse_boundary)
        .ok_or(S3Error::NOT_MULTIPART)
}

/// A declared body over `cap` is refused before `100 Continue`, so its bytes never come.
pub(super) fn refuse_declared_over(session: &Session, cap: u64) -> Result<(), S3Error> {
    match declared_length(session) {
        Some(len) if len > cap => Err(S3Error::ENTITY_TOO_LARGE),
        _ => Ok(()),
    }
}

/// Read the request body into `tx`, failing the stream past `cap` bytes.
pub(super) async fn pump_body(session: &mut Session, tx: mpsc::Sender<Chunk>, cap: u64) {
    let mut total = 0u64;
    loop {
        let item = match session.read_request_body().await {
            Ok(Some(b)) => {
                total += b.len() as u64;
                if total > cap {
                    Err(BodyError::TooLarge)
                } else {
                    Ok(b)
                }
            }
            Ok(None) => return,
            Err(_) => Err(BodyError::Read),
        };
        let stop = item.is_err();
        if tx.send(item).await.is_err() || stop {
            return;
        }
    }
}

/// Why a form stopped.
#[derive(Debug)]
pub(super) enum StreamError {
    /// The body passed its cap: 413, as on every upload path.
    TooLarge,
    /// The client went away mid-body.
    Cut,
    Form(FormError),
}

impl StreamError {
    pub fn to_s3(&self) -> S3Error {
        match self {
            StreamError::TooLarge => S3Error::ENTITY_TOO_LARGE,
            StreamError::Cut => S3Error::BODY_CUT_OFF,
            StreamError::Form(e) => S3Error::malformed_post(&e.to_string()),
        }
    }
}

/// The events of a form arriving on a channel.
pub(super) struct FormStream {
    rx: mpsc::Receiver<Chunk>,
    parser: Parser,
}

impl FormStream {
    pub fn new(rx: mpsc::Receiver<Chunk>, boundary: &str) -> Result<Self, S3Error> {
        let parser = Parser::new(boundary, LIMITS).map_err(|_| S3Error::NOT_MULTIPART)?;
        Ok(Self { rx, parser })
    }

    /// The next event; `None` after [`Event::End`].
    pub async fn next(&mut self) -> Result<Option<Event>, StreamError> {
        loop {
            if let Some(ev) = self.parser.next().map_err(StreamError::Form)? {
                return Ok(Some(ev));
            }
            if self.parser.is_done() {
                return Ok(None);
            }
            match self.rx.recv().await {
                Some(Ok(chunk)) => self.parser.push(&chunk),
                Some(Err(BodyError::TooLarge)) => return Err(StreamError::TooLarge),
                Some(Err(BodyError::Read)) => return Err(StreamError::Cut),
                None => self.parser.finish(),
            }
        }
    }
}
