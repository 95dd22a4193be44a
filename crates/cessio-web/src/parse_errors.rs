//! Bytes that are not an HTTP request get a problem too.
//!
//! hyper answers a request it cannot parse (a control character in a header value, a
//! malformed request line, headers over the limit) by itself, before any request reaches
//! the router: a bare `400`, `414` or `431` with an empty body, then it closes the
//! connection. Relaxing the parser instead (ignoring invalid header lines) would let a
//! request be framed differently from what a proxy in front of us saw, so the parser stays
//! strict, and this wrapper of the connection rewrites that one automatic answer into
//! `application/problem+json`.
//!
//! It recognises hyper's answer without guessing from content alone: a response head
//! written when no request has been handed to the router for it (every response the
//! router produces follows a request it was given), with an error status and no body.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use hyper::rt::{Read, ReadBufCursor, Write};

/// Requests the router was handed on one connection; the service counts them.
#[derive(Clone, Debug, Default)]
pub struct Dispatched(Arc<AtomicU64>);

impl Dispatched {
    pub fn record(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    fn count(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A connection whose automatic parse-error answers become problems.
#[derive(Debug)]
pub struct ProblemOnParseError<T> {
    inner: T,
    dispatched: Dispatched,
    /// Final response heads written so far (informational `1xx` ones not counted).
    responses: u64,
    /// The replacement still to be written, and how much of it has been.
    replacement: Option<(Vec<u8>, usize)>,
}

impl<T> ProblemOnParseError<T> {
    pub fn new(inner: T, dispatched: Dispatched) -> Self {
        ProblemOnParseError {
            inner,
            dispatched,
            responses: 0,
            replacement: None,
        }
    }
}

/// hyper's automatic answer, if `buf` is one: its status code and reason.
fn automatic_answer(buf: &[u8]) -> Option<(u16, &'static str, &'static str)> {
    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&buf[..head_end])
        .ok()?
        .to_ascii_lowercase();
    if !head.contains("\r\ncontent-length: 0") || buf.len() != head_end + 4 {
        return None;
    }
    match head.get(..12)? {
        "http/1.1 400" | "http/1.0 400" => Some((
            400,
            "Bad Request",
            "Richiesta HTTP non valida: riga di richiesta o intestazioni malformate (per esempio caratteri di controllo in un valore); nulla è stato registrato",
        )),
        "http/1.1 414" | "http/1.0 414" => Some((
            414,
            "URI Too Long",
            "Indirizzo della richiesta troppo lungo; nulla è stato registrato",
        )),
        "http/1.1 431" | "http/1.0 431" => Some((
            431,
            "Request Header Fields Too Large",
            "Intestazioni della richiesta troppo grandi; nulla è stato registrato",
        )),
        _ => None,
    }
}

fn problem_response(status: u16, reason: &str, detail: &str) -> Vec<u8> {
    let code = match status {
        414 => "uri_too_long",
        431 => "headers_too_large",
        _ => "bad_request",
    };
    let body = serde_json::json!({
        "type": format!("https://cessio.example/problems/{code}"),
        "title": reason,
        "status": status,
        "code": code,
        "detail": detail,
    })
    .to_string();
    format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/problem+json\r\n\
         cache-control: no-store\r\nx-content-type-options: nosniff\r\n\
         referrer-policy: no-referrer\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

impl<T: Read + Unpin> Read for ProblemOnParseError<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: Write + Unpin> ProblemOnParseError<T> {
    /// Writes what is left of the replacement; ready once all of it is written.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((bytes, written)) = &mut self.replacement {
            if *written == bytes.len() {
                break;
            }
            match Pin::new(&mut self.inner).poll_write(cx, &bytes[*written..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => *written += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: Write + Unpin> Write for ProblemOnParseError<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.replacement.is_some() {
            // After the automatic answer hyper writes nothing more; swallow anything else.
            return this.drain(cx).map_ok(|()| buf.len());
        }
        let starts_response =
            buf.starts_with(b"HTTP/1.") && buf.get(9..10).is_none_or(|c| c != b"1");
        if starts_response {
            if this.responses == this.dispatched.count() {
                if let Some((status, reason, detail)) = automatic_answer(buf) {
                    this.replacement = Some((problem_response(status, reason, detail), 0));
                    return this.drain(cx).map_ok(|()| buf.len());
                }
            } else {
                this.responses += 1;
            }
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if let Poll::Ready(Err(e)) = this.drain(cx) {
            return Poll::Ready(Err(e));
        }
        if this.replacement.as_ref().is_some_and(|(b, w)| *w < b.len()) {
            return Poll::Pending;
        }
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match this.drain(cx) {
            Poll::Ready(Ok(())) => Pin::new(&mut this.inner).poll_shutdown(cx),
            other => other,
        }
    }

    fn is_write_vectored(&self) -> bool {
        // Whole heads arrive in one `poll_write`, where they can be recognised.
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hypers_empty_error_answer_is_recognised() {
        let auto = b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        assert_eq!(automatic_answer(auto).map(|a| a.0), Some(400));
        let ours = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/problem+json\r\ncontent-length: 10\r\n\r\n{\"a\":1234}";
        assert_eq!(automatic_answer(ours), None);
        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(automatic_answer(ok), None);
    }

    #[test]
    fn the_replacement_is_a_problem_with_its_length() {
        let r = String::from_utf8(problem_response(
            431,
            "Request Header Fields Too Large",
            "x",
        ))
        .unwrap_or_default();
        let (head, body) = r.split_once("\r\n\r\n").unwrap_or_default();
        assert!(head.contains("application/problem+json"));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        assert!(body.contains("\"code\":\"headers_too_large\""));
    }
}
