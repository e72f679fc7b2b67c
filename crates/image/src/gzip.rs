//! A gzip reader for layer blobs that skips the CRC-32 of each member.
//!
//! Why: a layer's integrity is already proven twice, by the blob digest over
//! the compressed bytes and by the diff ID over the decompressed ones, both
//! sha256. The gzip CRC adds nothing to that and cost ≈ 6 % of a pull's CPU
//! here (zlib-rs falls back to its portable CRC on this build). Everything
//! else of the format is checked: magic, method, header flags, and each
//! member's ISIZE against what was inflated, so a truncated or malformed
//! stream still fails. Concatenated members (pigz, `cat a.gz b.gz`) are read
//! one after the other, as `gzip -d` does.

use std::io::{self, BufRead, Read};

use flate2::bufread::DeflateDecoder;

const FTEXT_MASK: u8 = 0x01;
const FHCRC: u8 = 0x02;
const FEXTRA: u8 = 0x04;
const FNAME: u8 = 0x08;
const FCOMMENT: u8 = 0x10;
const RESERVED: u8 = 0xe0;

enum State<R> {
    /// At a member boundary (or the start); `first` until one member is read.
    Header {
        reader: R,
        first: bool,
    },
    Body {
        inflater: DeflateDecoder<R>,
        out: u64,
    },
    Done,
}

/// Decompresses every gzip member of `R` in turn.
pub struct GzipMembers<R: BufRead> {
    state: State<R>,
}

impl<R: BufRead> GzipMembers<R> {
    pub fn new(reader: R) -> Self {
        GzipMembers {
            state: State::Header {
                reader,
                first: true,
            },
        }
    }
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

fn read_byte(r: &mut impl BufRead) -> io::Result<u8> {
    let mut b = [0u8; 1];
    r.read_exact(&mut b).map_err(|e| truncated(e, "header"))?;
    Ok(b[0])
}

fn truncated(e: io::Error, part: &str) -> io::Error {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        invalid(format!("gzip stream truncated in a member {part}"))
    } else {
        e
    }
}

fn skip_zero_terminated(r: &mut impl BufRead) -> io::Result<()> {
    while read_byte(r)? != 0 {}
    Ok(())
}

/// Reads one member header; Ok(false) at a clean end of input.
fn read_header(r: &mut impl BufRead, first: bool) -> io::Result<bool> {
    if r.fill_buf()?.is_empty() {
        if first {
            return Err(invalid("empty gzip stream"));
        }
        return Ok(false);
    }
    let mut fixed = [0u8; 10];
    r.read_exact(&mut fixed)
        .map_err(|e| truncated(e, "header"))?;
    if fixed[0] != 0x1f || fixed[1] != 0x8b {
        return Err(invalid(format!(
            "not a gzip member: starts with {:02x} {:02x}, expected 1f 8b",
            fixed[0], fixed[1]
        )));
    }
    if fixed[2] != 8 {
        return Err(invalid(format!(
            "gzip compression method {} is not deflate (8)",
            fixed[2]
        )));
    }
    let flags = fixed[3];
    if flags & RESERVED != 0 {
        return Err(invalid(format!(
            "gzip header has reserved flags {flags:#04x}"
        )));
    }
    let _ = flags & FTEXT_MASK; // a hint only
    if flags & FEXTRA != 0 {
        let mut len = [0u8; 2];
        r.read_exact(&mut len).map_err(|e| truncated(e, "header"))?;
        let len = u16::from_le_bytes(len) as u64;
        let skipped = io::copy(&mut r.by_ref().take(len), &mut io::sink())?;
        if skipped != len {
            return Err(invalid("gzip stream truncated in a member header"));
        }
    }
    if flags & FNAME != 0 {
        skip_zero_terminated(r)?;
    }
    if flags & FCOMMENT != 0 {
        skip_zero_terminated(r)?;
    }
    if flags & FHCRC != 0 {
        let mut crc = [0u8; 2];
        r.read_exact(&mut crc).map_err(|e| truncated(e, "header"))?;
    }
    Ok(true)
}

impl<R: BufRead> Read for GzipMembers<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            match std::mem::replace(&mut self.state, State::Done) {
                State::Done => return Ok(0),
                State::Header { mut reader, first } => {
                    if !read_header(&mut reader, first)? {
                        return Ok(0);
                    }
                    self.state = State::Body {
                        inflater: DeflateDecoder::new(reader),
                        out: 0,
                    };
                }
                State::Body { mut inflater, out } => {
                    let n = inflater.read(buf)?;
                    if n > 0 {
                        self.state = State::Body {
                            inflater,
                            out: out + n as u64,
                        };
                        return Ok(n);
                    }
                    // The deflate stream ended; the bufread decoder consumed
                    // exactly its input, so the trailer comes next.
                    let mut reader = inflater.into_inner();
                    let mut trailer = [0u8; 8];
                    reader
                        .read_exact(&mut trailer)
                        .map_err(|e| truncated(e, "trailer"))?;
                    let isize = u32::from_le_bytes(trailer[4..8].try_into().expect("4 bytes"));
                    if isize != out as u32 {
                        return Err(invalid(format!(
                            "gzip member size mismatch: trailer says {isize} bytes (mod 2^32), inflated {out}"
                        )));
                    }
                    self.state = State::Header {
                        reader,
                        first: false,
                    };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn inflate(input: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        GzipMembers::new(io::BufReader::with_capacity(7, input)).read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn one_member_and_concatenated_members() {
        let a: Vec<u8> = (0..100_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        assert_eq!(inflate(&gz(&a)).unwrap(), a);
        let mut two = gz(b"hello ");
        two.extend(gz(b"world"));
        assert_eq!(inflate(&two).unwrap(), b"hello world");
        assert_eq!(inflate(&gz(b"")).unwrap(), b"");
    }

    #[test]
    fn header_fields_are_skipped() {
        let mut e = flate2::GzBuilder::new()
            .filename("layer.tar")
            .comment("made by a test")
            .extra(vec![1, 2, 3, 4])
            .write(Vec::new(), flate2::Compression::fast());
        e.write_all(b"payload").unwrap();
        let mut blob = e.finish().unwrap();
        assert_eq!(inflate(&blob).unwrap(), b"payload");
        // With a header CRC too (flag FHCRC, two bytes after the fields).
        blob[3] |= FHCRC;
        let name_end = 10 + 2 + 4 + b"layer.tar\0".len() + b"made by a test\0".len();
        blob.splice(name_end..name_end, [0xab, 0xcd]);
        assert_eq!(inflate(&blob).unwrap(), b"payload");
    }

    #[test]
    fn malformed_streams_fail_with_a_reason() {
        let good = gz(b"some layer bytes");
        let err = |b: &[u8]| inflate(b).unwrap_err().to_string();
        assert!(
            err(&good[..good.len() - 3]).contains("truncated"),
            "{}",
            err(&good[..good.len() - 3])
        );
        assert!(err(&good[..5]).contains("truncated"));
        assert!(err(b"").contains("empty"));
        assert!(err(b"PK\x03\x04zipfile").contains("not a gzip member"));
        let mut bad_size = good.clone();
        let n = bad_size.len();
        bad_size[n - 4] ^= 1;
        assert!(err(&bad_size).contains("size mismatch"));
        let mut method = good.clone();
        method[2] = 7;
        assert!(err(&method).contains("not deflate"));
        // Trailing garbage after a member is not silently accepted.
        let mut trailing = good.clone();
        trailing.extend(b"junk after the stream");
        assert!(err(&trailing).contains("not a gzip member"));
    }

    /// A corrupted CRC is not an error here (the digests cover it, as they
    /// cover a flipped literal that still inflates), but a broken deflate
    /// stream still is.
    #[test]
    fn crc_is_not_checked_but_the_body_is() {
        let good = gz(b"abcdefghijklmnopqrstuvwxyz0123456789");
        let mut crc = good.clone();
        let n = crc.len();
        crc[n - 8] ^= 0xff;
        assert_eq!(
            inflate(&crc).unwrap(),
            b"abcdefghijklmnopqrstuvwxyz0123456789"
        );
        let mut body = good;
        body[10] = 0x07; // first block: final, type 3 (reserved)
        assert!(inflate(&body).is_err());
    }
}
