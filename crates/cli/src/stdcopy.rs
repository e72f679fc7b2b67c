//! Docker's multiplexed stream (`application/vnd.docker.multiplexed-stream`):
//! frames of an 8-byte header (stream, 0, 0, 0, big-endian length) and the
//! payload. The parser keeps partial frames across chunk boundaries.

use std::io::{self, Write};

#[derive(Default)]
pub struct Demux {
    buf: Vec<u8>,
}

impl Demux {
    /// Feeds a chunk; complete frames go to `out` (stream 1, and 0 = stdin
    /// echo) or `err` (stream 2).
    pub fn feed(
        &mut self,
        chunk: &[u8],
        out: &mut dyn Write,
        err: &mut dyn Write,
    ) -> io::Result<()> {
        self.buf.extend_from_slice(chunk);
        let mut at = 0;
        while self.buf.len() - at >= 8 {
            let h = &self.buf[at..at + 8];
            let len = u32::from_be_bytes([h[4], h[5], h[6], h[7]]) as usize;
            if self.buf.len() - at - 8 < len {
                break;
            }
            let stream = h[0];
            let data = &self.buf[at + 8..at + 8 + len];
            match stream {
                0 | 1 => {
                    out.write_all(data)?;
                    out.flush()?;
                }
                2 => {
                    err.write_all(data)?;
                    err.flush()?;
                }
                3 => {
                    // systemerr: the daemon reports a failure inside the stream.
                    return Err(io::Error::other(String::from_utf8_lossy(data).into_owned()));
                }
                n => {
                    return Err(io::Error::other(format!(
                        "unrecognized stream {n} in the multiplexed output"
                    )));
                }
            }
            at += 8 + len;
        }
        self.buf.drain(..at);
        Ok(())
    }

    /// Bytes of an unfinished frame (a truncated stream when non-zero at EOF).
    #[cfg(test)]
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(s: u8, d: &[u8]) -> Vec<u8> {
        let mut v = vec![s, 0, 0, 0];
        v.extend_from_slice(&(d.len() as u32).to_be_bytes());
        v.extend_from_slice(d);
        v
    }

    #[test]
    fn split_frames() {
        let mut all = frame(1, b"hello ");
        all.extend(frame(2, b"oops\n"));
        all.extend(frame(1, b"world\n"));
        // Every split point, byte by byte.
        for cut in 0..all.len() {
            let (mut o, mut e) = (Vec::new(), Vec::new());
            let mut d = Demux::default();
            d.feed(&all[..cut], &mut o, &mut e).unwrap();
            d.feed(&all[cut..], &mut o, &mut e).unwrap();
            assert_eq!(o, b"hello world\n");
            assert_eq!(e, b"oops\n");
            assert_eq!(d.pending(), 0);
        }
    }

    #[test]
    fn bad_stream() {
        let mut d = Demux::default();
        let (mut o, mut e) = (Vec::new(), Vec::new());
        assert!(d.feed(&frame(7, b"x"), &mut o, &mut e).is_err());
        let mut d = Demux::default();
        let err = d.feed(&frame(3, b"boom"), &mut o, &mut e).unwrap_err();
        assert_eq!(err.to_string(), "boom");
    }
}
