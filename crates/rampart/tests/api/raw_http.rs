//! A request on a raw connection, for the answers a client library hides: a server that answers
//! early (413) and closes while the body is still being sent, or closes a connection that never
//! finished its request.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use crate::helpers::Resp;

/// Sends a request head and then a large body on a raw connection, reading the answer at the
/// same time, so that a server answering early (413) and then closing is seen answering rather
/// than as a reset on our side. `chunked`: Transfer-Encoding: chunked and no Content-Length.
pub fn raw_big_post(
    addr: SocketAddr,
    method: &str,
    path: &str,
    extra_headers: &str,
    body: Vec<u8>,
    chunked: bool,
) -> Resp {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let length = if chunked {
        "Transfer-Encoding: chunked\r\n".to_owned()
    } else {
        format!("Content-Length: {}\r\n", body.len())
    };
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n{extra_headers}{length}Connection: close\r\n\r\n"
    );
    let mut writer = stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        if writer.write_all(head.as_bytes()).is_err() {
            return;
        }
        for chunk in body.chunks(16 * 1024) {
            let sent = if chunked {
                writer
                    .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                    .and_then(|()| writer.write_all(chunk))
                    .and_then(|()| writer.write_all(b"\r\n"))
            } else {
                writer.write_all(chunk)
            };
            // The server may stop reading and close once it has answered: expected.
            if sent.is_err() {
                return;
            }
        }
        if chunked {
            let _ = writer.write_all(b"0\r\n\r\n");
        }
    });
    let resp = read_response(&mut stream);
    let _ = stream.shutdown(std::net::Shutdown::Both);
    let _ = sender.join();
    resp
}

/// Reads one HTTP/1.1 response (Content-Length framed, or up to EOF).
pub fn read_response(stream: &mut TcpStream) -> Resp {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        match stream.read(&mut chunk) {
            Ok(0) => panic!("connection closed before a response head: {:?}", String::from_utf8_lossy(&buf)),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => panic!("no response head ({e}); got {:?}", String::from_utf8_lossy(&buf)),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let mut headers = HeaderMap::new();
    for line in lines {
        let (name, value) = line.split_once(':').unwrap();
        headers.append(
            HeaderName::from_bytes(name.trim().as_bytes()).unwrap(),
            HeaderValue::from_str(value.trim()).unwrap(),
        );
    }
    let mut body = buf[head_end + 4..].to_vec();
    let length = headers.get("content-length").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    loop {
        if length.is_some_and(|n| body.len() >= n) {
            break;
        }
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
            // Unframed: the close (or a reset after it) ends the body.
            Err(_) if length.is_none() => break,
            Err(e) => panic!("response body cut short: {e}"),
        }
    }
    Resp { status, headers, body }
}

/// Reads from a raw connection until the server closes it; panics if that takes past `deadline`.
/// Returns what was received and when the close came.
pub fn wait_for_close(stream: &mut TcpStream, started: Instant, deadline: Duration) -> (Vec<u8>, Duration) {
    stream.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        assert!(
            started.elapsed() < deadline,
            "connection still open after {:?}; received {:?}",
            started.elapsed(),
            String::from_utf8_lossy(&got)
        );
        match stream.read(&mut buf) {
            Ok(0) => return (got, started.elapsed()),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return (got, started.elapsed()), // reset: closed too
        }
    }
}
