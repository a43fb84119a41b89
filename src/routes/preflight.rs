//! CORS preflight (`OPTIONS`) on any upload route: 204 with the allowed methods and headers
//! for an allowed origin, 403 for any other.

use pingora::proxy::Session;

use crate::http_io::{finish_unread_body, response_header, send, Reply};

use super::context::RouteContext;

pub(crate) async fn handle(
    ctx: &RouteContext,
    session: &mut Session,
    origin: Option<&str>,
) -> pingora::Result<()> {
    match origin {
        Some(o) => {
            let mut h = response_header(&Reply::empty(204))?;
            ctx.cors.decorate_preflight(&mut h, o)?;
            finish_unread_body(session).await;
            session.write_response_header(Box::new(h), true).await
        }
        None => send(session, Reply::empty(403), &ctx.cors, None).await,
    }
}
