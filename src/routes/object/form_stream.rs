//! A form body as [`Event`]s: a pump reads the request body from Pingora into a channel,
//! counted against a cap, and [`FormStream`] feeds it to the bounded [`Parser`]. The two run
//! joined, so the parser never holds the session.

use bytes::Bytes;
use pingora::proxy::Session;
use tokio::sync::mpsc;

use crate::form_data::{parse_boundary, Event, FormError, Parser, LIMITS};
use crate::http_io::{declared_length, header_bytes, PaceError, Pacer};
use crate::refusals::Reason;
use crate::s3_error::S3Error;

use super::super::context::RouteContext;

pub(super) type Chunk = Result<Bytes, ChunkError>;

/// Why the body pump stopped early.
#[derive(Debug)]
pub(super) enum ChunkError {
    TooLarge,
    Read,
    /// Too slow a body ([`Pacer`]).
    Slow,
}

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

/// Read the request body into `tx`, failing the stream past `cap` bytes or when it arrives
/// too slowly (counted in `ctx.refusals`).
pub(super) async fn pump_body(ctx: &RouteContext, session: &mut Session, tx: mpsc::Sender<Chunk>, cap: u64) {
    let mut pacer = Pacer::new(&ctx.upload_body);
    loop {
        let item = match pacer.read(session).await {
            Ok(Some(b)) => {
                if pacer.bytes() > cap {
                    Err(ChunkError::TooLarge)
                } else {
                    Ok(b)
                }
            }
            Ok(None) => return,
            Err(PaceError::Read) => Err(ChunkError::Read),
            Err(PaceError::Slow(reason)) => {
                record_slow(ctx, session, reason, &pacer);
                Err(ChunkError::Slow)
            }
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
    /// The body stalled or fell below the minimum rate.
    Slow,
    Form(FormError),
}

impl StreamError {
    pub fn to_s3(&self) -> S3Error {
        match self {
            StreamError::TooLarge => S3Error::ENTITY_TOO_LARGE,
            StreamError::Cut => S3Error::BODY_CUT_OFF,
            StreamError::Slow => S3Error::REQUEST_TIMEOUT,
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
                Some(Err(ChunkError::TooLarge)) => return Err(StreamError::TooLarge),
                Some(Err(ChunkError::Read)) => return Err(StreamError::Cut),
                Some(Err(ChunkError::Slow)) => return Err(StreamError::Slow),
                None => self.parser.finish(),
            }
        }
    }
}

/// Count and log (rate-limited) an upload body ended for its pace.
pub(super) fn record_slow(ctx: &RouteContext, session: &Session, reason: Reason, pacer: &Pacer) {
    let peer = session.client_addr().map(|a| a.to_string()).unwrap_or_default();
    ctx.refusals.record(
        reason,
        format_args!("{peer} {} bytes in {:.1} s", pacer.bytes(), pacer.elapsed().as_secs_f64()),
    );
}
