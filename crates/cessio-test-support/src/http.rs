//! A small HTTP/1.1 client for tests against a real server: one request per connection
//! (`Connection: close`), the answer read to the close and parsed whole. A test that means
//! to send malformed bytes writes them itself, or through [`exchange`].

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long one exchange may take before it counts as unanswered.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// One request, built up and then sent with [`Request::send`].
#[derive(Debug, Clone)]
pub struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Option<(String, Vec<u8>)>,
}

impl Request {
    pub fn new(method: &str, path: &str) -> Request {
        Request {
            method: method.to_string(),
            path: path.to_string(),
            headers: Vec::new(),
            body: None,
        }
    }

    pub fn get(path: &str) -> Request {
        Request::new("GET", path)
    }

    pub fn post(path: &str) -> Request {
        Request::new("POST", path)
    }

    pub fn header(mut self, name: &str, value: &str) -> Request {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// The header when there is a value, nothing otherwise.
    pub fn header_if(self, name: &str, value: Option<&str>) -> Request {
        match value {
            Some(v) => self.header(name, v),
            None => self,
        }
    }

    pub fn body(mut self, content_type: &str, body: impl Into<Vec<u8>>) -> Request {
        self.body = Some((content_type.to_string(), body.into()));
        self
    }

    pub fn json(self, body: &str) -> Request {
        self.body("application/json", body)
    }

    pub fn form(self, body: &str) -> Request {
        self.body("application/x-www-form-urlencoded", body)
    }

    /// The request as it goes on the wire.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut head = format!(
            "{} {} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n",
            self.method, self.path
        );
        for (k, v) in &self.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        if let Some((content_type, body)) = &self.body {
            head.push_str(&format!(
                "Content-Type: {content_type}\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        if let Some((_, body)) = &self.body {
            bytes.extend_from_slice(body);
        }
        bytes
    }

    /// Sends the request on a fresh connection. `None` when no complete answer arrived
    /// within [`TIMEOUT`] (refused connection, reset, cut short): the caller does not know
    /// whether the server applied it.
    pub async fn send(&self, addr: SocketAddr) -> Option<Reply> {
        exchange(addr, &self.to_bytes()).await
    }
}

/// Writes `bytes` on a fresh connection and reads the answer to the close. A server that
/// answers before reading the whole request (a refused body) may close on the rest: what
/// it answered still counts.
pub async fn exchange(addr: SocketAddr, bytes: &[u8]) -> Option<Reply> {
    let go = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
        let _ = s.write_all(bytes).await;
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf).await;
        Reply::parse(&buf)
    };
    tokio::time::timeout(TIMEOUT, go).await.ok().flatten()
}

/// One answer: its status, headers in order, and body (de-chunked).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    /// Parses one HTTP/1.1 response. `None` unless it is whole: the body as long as its
    /// `Content-Length`, or chunked up to the last chunk.
    pub fn parse(buf: &[u8]) -> Option<Reply> {
        let split = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
        let head = String::from_utf8_lossy(&buf[..split]);
        let mut lines = head.lines();
        let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        let mut reply = Reply {
            status,
            headers,
            body: Vec::new(),
        };
        let raw = &buf[split + 4..];
        reply.body = if reply
            .header("transfer-encoding")
            .is_some_and(|v| v.contains("chunked"))
        {
            dechunk(raw)?
        } else if let Some(length) = reply.header("content-length") {
            raw.get(..length.parse::<usize>().ok()?)?.to_vec()
        } else {
            raw.to_vec()
        };
        Some(reply)
    }

    /// The body as JSON, or `Null` when it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The first header of that name (names compared ignoring case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The `name=value` pair of the cookie `name` the answer sets, if it sets one.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
            .filter_map(|(_, v)| v.split(';').next())
            .find(|pair| pair.split_once('=').is_some_and(|(k, _)| k == name))
            .map(str::to_string)
    }
}

/// A chunked body; `None` unless it ends with the last (empty) chunk.
fn dechunk(mut raw: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let end = raw.windows(2).position(|w| w == b"\r\n")?;
        let size = std::str::from_utf8(&raw[..end]).ok()?.trim();
        let size = usize::from_str_radix(size.split(';').next()?, 16).ok()?;
        raw = &raw[end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(raw.get(..size)?);
        raw = raw.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::{Reply, Request};

    #[test]
    fn a_request_carries_its_length_and_type() {
        let wire = Request::post("/x")
            .header("Cookie", "a=1")
            .json("{}")
            .to_bytes();
        assert_eq!(
            String::from_utf8_lossy(&wire),
            "POST /x HTTP/1.1\r\nHost: test\r\nConnection: close\r\nCookie: a=1\r\n\
             Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
        );
    }

    #[test]
    fn only_whole_answers_parse() {
        let r = Reply::parse(
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nSet-Cookie: s=v; HttpOnly\r\n\r\nok",
        );
        let r = r.expect("a whole answer");
        assert_eq!((r.status, r.text().as_str()), (200, "ok"));
        assert_eq!(r.cookie("s").as_deref(), Some("s=v"));
        assert!(Reply::parse(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nok").is_none());
        let chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n";
        assert_eq!(Reply::parse(chunked).map(|r| r.body), Some(b"ok".to_vec()));
        assert!(
            Reply::parse(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n")
                .is_none()
        );
    }
}
