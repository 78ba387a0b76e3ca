//! Hand-written HTTP/1.1 client side, so that every request shape is under control:
//! request heads, chunked bodies, and a response reader that keeps leftover bytes (for
//! pipelining) and survives being cancelled mid-read (for `Expect: 100-continue`).

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest response head accepted.
const MAX_HEAD: usize = 16 * 1024;
/// Largest response body accepted.
const MAX_BODY: usize = 1024 * 1024;

/// Why an exchange failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HttpError {
    #[error("cannot connect: {0}")]
    Connect(io::Error),
    #[error("connection reset or broken: {0}")]
    Io(#[from] io::Error),
    #[error("no reply within {0:?}")]
    Timeout(Duration),
    #[error("connection closed before a complete reply")]
    Eof {
        /// No byte of the reply arrived (a stale keep-alive connection looks like this).
        nothing_received: bool,
    },
    #[error("malformed reply: {0}")]
    Malformed(String),
}

impl HttpError {
    /// Short label for the report.
    pub(crate) fn cause(&self) -> &'static str {
        match self {
            HttpError::Connect(_) => "connect",
            HttpError::Io(e) if e.kind() == io::ErrorKind::ConnectionReset => "reset",
            HttpError::Io(e) if e.kind() == io::ErrorKind::BrokenPipe => "broken-pipe",
            HttpError::Io(_) => "io",
            HttpError::Timeout(_) => "timeout",
            HttpError::Eof { .. } => "closed",
            HttpError::Malformed(_) => "bad-reply",
        }
    }

    /// Whether the failure happened before any byte of the reply arrived on a connection
    /// that the server may have closed while idle.
    pub(crate) fn is_stale(&self) -> bool {
        match self {
            HttpError::Eof { nothing_received } => *nothing_received,
            HttpError::Io(e) => matches!(e.kind(), io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe),
            _ => false,
        }
    }
}

/// A parsed response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
    /// The server will close the connection after this reply.
    pub(crate) close: bool,
}

/// One client TCP connection with its read buffer.
#[derive(Debug)]
pub(crate) struct Conn {
    pub(crate) stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    /// Open a connection (with `TCP_NODELAY`, as the small writes of chunked and
    /// 100-continue requests must leave at once).
    pub(crate) async fn connect(
        addr: SocketAddr,
        local: Option<std::net::IpAddr>,
        timeout: Duration,
    ) -> Result<Conn, HttpError> {
        let open = async {
            match local {
                None => TcpStream::connect(addr).await,
                Some(ip) => {
                    let socket =
                        if ip.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
                    socket.bind(SocketAddr::new(ip, 0))?;
                    socket.connect(addr).await
                }
            }
        };
        let stream = match tokio::time::timeout(timeout, open).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(HttpError::Connect(e)),
            Err(_) => return Err(HttpError::Connect(io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))),
        };
        stream.set_nodelay(true).map_err(HttpError::Connect)?;
        Ok(Conn { stream, buf: Vec::with_capacity(4096) })
    }

    /// Whether an idle kept-alive connection still looks usable: no EOF, no error and no
    /// unsolicited bytes (a `408` or similar) waiting.
    pub(crate) fn looks_alive(&self) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        let mut probe = [0u8; 1];
        match self.stream.try_read(&mut probe) {
            Err(e) => e.kind() == io::ErrorKind::WouldBlock,
            Ok(_) => false,
        }
    }

    pub(crate) async fn write(&mut self, bytes: &[u8]) -> Result<(), HttpError> {
        self.stream.write_all(bytes).await?;
        Ok(())
    }

    /// Read one response; with `skip_interim`, `1xx` responses are read and dropped.
    /// Cancel-safe: bytes read so far stay in the buffer.
    pub(crate) async fn read_response(&mut self, skip_interim: bool) -> Result<Response, HttpError> {
        loop {
            let resp = self.read_one().await?;
            if skip_interim && (100..200).contains(&resp.status) {
                continue;
            }
            return Ok(resp);
        }
    }

    /// [`Conn::read_response`] with a deadline.
    pub(crate) async fn read_response_within(
        &mut self,
        skip_interim: bool,
        timeout: Duration,
    ) -> Result<Response, HttpError> {
        match tokio::time::timeout(timeout, self.read_response(skip_interim)).await {
            Ok(r) => r,
            Err(_) => Err(HttpError::Timeout(timeout)),
        }
    }

    async fn fill(&mut self) -> Result<usize, HttpError> {
        let before = self.buf.len();
        self.buf.reserve(8192);
        let n = self.stream.read_buf(&mut self.buf).await?;
        debug_assert_eq!(self.buf.len(), before + n);
        Ok(n)
    }

    async fn read_one(&mut self) -> Result<Response, HttpError> {
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            if self.buf.len() > MAX_HEAD {
                return Err(HttpError::Malformed("response head too large".into()));
            }
            if self.fill().await? == 0 {
                return Err(HttpError::Eof { nothing_received: self.buf.is_empty() });
            }
        };
        let head = std::str::from_utf8(&self.buf[..head_end])
            .map_err(|_| HttpError::Malformed("response head is not UTF-8".into()))?
            .to_owned();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or_default();
        if !version.starts_with("HTTP/1.") {
            return Err(HttpError::Malformed(format!("status line {status_line:?}")));
        }
        let status: u16 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| HttpError::Malformed(format!("status line {status_line:?}")))?;
        let mut length = None;
        let mut chunked = false;
        let mut close = version == "HTTP/1.0";
        for line in lines.filter(|l| !l.is_empty()) {
            let Some((name, value)) = line.split_once(':') else {
                return Err(HttpError::Malformed(format!("header line {line:?}")));
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = Some(value.parse::<usize>().map_err(|_| HttpError::Malformed(format!("{line:?}")))?);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.to_ascii_lowercase().contains("chunked");
            } else if name.eq_ignore_ascii_case("connection") {
                let v = value.to_ascii_lowercase();
                if v.contains("close") {
                    close = true;
                } else if v.contains("keep-alive") {
                    close = false;
                }
            }
        }
        self.buf.drain(..head_end);
        let body = if (100..200).contains(&status) || status == 204 || status == 304 {
            Vec::new()
        } else if chunked {
            self.read_chunked().await?
        } else if let Some(n) = length {
            if n > MAX_BODY {
                return Err(HttpError::Malformed(format!("reply body of {n} bytes")));
            }
            while self.buf.len() < n {
                if self.fill().await? == 0 {
                    return Err(HttpError::Eof { nothing_received: false });
                }
            }
            self.buf.drain(..n).collect()
        } else if close {
            while self.fill().await? > 0 {
                if self.buf.len() > MAX_BODY {
                    return Err(HttpError::Malformed("reply body too large".into()));
                }
            }
            std::mem::take(&mut self.buf)
        } else {
            Vec::new()
        };
        Ok(Response { status, body, close })
    }

    async fn read_line(&mut self) -> Result<String, HttpError> {
        loop {
            if let Some(i) = find(&self.buf, b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[..i]).into_owned();
                self.buf.drain(..i + 2);
                return Ok(line);
            }
            if self.buf.len() > MAX_HEAD {
                return Err(HttpError::Malformed("chunk line too long".into()));
            }
            if self.fill().await? == 0 {
                return Err(HttpError::Eof { nothing_received: false });
            }
        }
    }

    async fn read_chunked(&mut self) -> Result<Vec<u8>, HttpError> {
        let mut body = Vec::new();
        loop {
            let line = self.read_line().await?;
            let size = usize::from_str_radix(line.split(';').next().unwrap_or_default().trim(), 16)
                .map_err(|_| HttpError::Malformed(format!("chunk size {line:?}")))?;
            if size == 0 {
                while !self.read_line().await?.is_empty() {}
                return Ok(body);
            }
            if body.len() + size > MAX_BODY {
                return Err(HttpError::Malformed("reply body too large".into()));
            }
            while self.buf.len() < size + 2 {
                if self.fill().await? == 0 {
                    return Err(HttpError::Eof { nothing_received: false });
                }
            }
            body.extend(self.buf.drain(..size));
            self.buf.drain(..2);
        }
    }
}

/// Position of `needle` in `hay`.
pub(crate) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A body split into `chunks` pieces of random-looking but deterministic sizes, encoded
/// with `Transfer-Encoding: chunked` (each chunk a separate slice, to be written apart).
pub(crate) fn chunked(body: &[u8], chunks: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    if !body.is_empty() {
        let chunks = chunks.clamp(1, body.len());
        let mut start = 0;
        for i in 0..chunks {
            // Uneven pieces: the i-th ends at a slightly skewed fraction of the body.
            let end =
                if i + 1 == chunks { body.len() } else { (body.len() * (2 * i + 1) / (2 * chunks)).max(start + 1) };
            let piece = &body[start..end];
            let mut c = format!("{:x}\r\n", piece.len()).into_bytes();
            c.extend_from_slice(piece);
            c.extend_from_slice(b"\r\n");
            out.push(c);
            start = end;
        }
    }
    out.push(b"0\r\n\r\n".to_vec());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_reassembles() {
        let body: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
        let enc: Vec<u8> = chunked(&body, 4).concat();
        let mut dec = Vec::new();
        let mut rest = &enc[..];
        loop {
            let i = find(rest, b"\r\n").unwrap();
            let n = usize::from_str_radix(std::str::from_utf8(&rest[..i]).unwrap(), 16).unwrap();
            rest = &rest[i + 2..];
            if n == 0 {
                assert_eq!(rest, b"\r\n");
                break;
            }
            dec.extend_from_slice(&rest[..n]);
            rest = &rest[n + 2..];
        }
        assert_eq!(dec, body);
        assert_eq!(chunked(&body, 4).len(), 5);
        assert_eq!(chunked(b"", 4), vec![b"0\r\n\r\n".to_vec()]);
    }
}
