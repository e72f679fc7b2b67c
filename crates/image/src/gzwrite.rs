//! The gzip writer for layers Berth makes (build steps, commit): deflate
//! at level 6, except for stretches that deflate cannot shrink, which are
//! written as stored blocks.
//!
//! Why: a layer of already-compressed or random data (the bench's 32 MB
//! `COPY data/`, media, archives, compiled assets) cost about a second of
//! level-6 deflate per 32 MB for a blob no smaller than the input; stored
//! blocks cost a copy. The choice is made per 1 MiB of input from its
//! byte entropy, so it depends only on the bytes: the same tar gives the
//! same blob, and a tar with no incompressible stretch gives exactly what
//! a plain level-6 `GzEncoder` gave before. The result is an ordinary
//! single-member gzip stream (with its CRC-32) that any reader accepts.

use std::io::{self, Write};

use flate2::{Compress, Compression, Crc, FlushCompress, Status};

/// Input is judged in pieces of this size.
const CHUNK: usize = 1 << 20;
/// Bits per byte above which a piece is stored. Compressed or random
/// files measure 7.99+; a tar of them, with a mostly-zero 512-byte header
/// every few KiB, about 7.9 (deflate then saves ~3 %, the headers, for
/// ~1 s of CPU per 32 MB); text and executables 4.5–6.5.
const STORE_ABOVE: f64 = 7.5;
const LEVEL: u32 = 6;

pub struct GzWriter<W: Write> {
    inner: W,
    deflate: Compress,
    crc: Crc,
    pending: Vec<u8>,
    out: Vec<u8>,
    level: u32,
}

impl<W: Write> GzWriter<W> {
    pub fn new(mut inner: W) -> io::Result<GzWriter<W>> {
        // As flate2's GzEncoder writes it at level 6: no name, no mtime,
        // OS "unknown" (reproducible).
        inner.write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff])?;
        Ok(GzWriter {
            inner,
            deflate: Compress::new(Compression::new(LEVEL), false),
            crc: Crc::new(),
            pending: Vec::with_capacity(CHUNK),
            out: Vec::with_capacity(CHUNK + 4096),
            level: LEVEL,
        })
    }

    /// Deflates `data` (all of it) with `flush`, writing what comes out.
    fn deflate(&mut self, data: &[u8], flush: FlushCompress) -> io::Result<()> {
        let mut at = 0;
        loop {
            self.out.clear();
            let before = self.deflate.total_in();
            let status = self
                .deflate
                .compress_vec(&data[at..], &mut self.out, flush)
                .map_err(io::Error::other)?;
            at += (self.deflate.total_in() - before) as usize;
            self.inner.write_all(&self.out)?;
            let out_full = self.out.len() == self.out.capacity();
            match status {
                Status::StreamEnd => return Ok(()),
                _ if at < data.len() || out_full => continue,
                _ => return Ok(()),
            }
        }
    }

    fn chunk(&mut self, data: &[u8]) -> io::Result<()> {
        let level = if entropy(data) > STORE_ABOVE {
            0
        } else {
            LEVEL
        };
        if level != self.level {
            // A sync flush ends the blocks so far on a byte boundary, not
            // as the last ones: a new compressor's blocks continue the same
            // deflate stream (as pigz joins its pieces). Only the 32 KiB
            // history is lost. (zlib's deflateParams would keep it, but
            // flate2 calls it without an output buffer.)
            self.deflate(&[], FlushCompress::Sync)?;
            self.deflate = Compress::new(Compression::new(level), false);
            self.level = level;
        }
        self.crc.update(data);
        self.deflate(data, FlushCompress::None)
    }

    /// Ends the stream (last block, CRC-32, length); returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        let rest = std::mem::take(&mut self.pending);
        if !rest.is_empty() {
            self.chunk(&rest)?;
        }
        self.deflate(&[], FlushCompress::Finish)?;
        self.inner.write_all(&self.crc.sum().to_le_bytes())?;
        self.inner.write_all(&self.crc.amount().to_le_bytes())?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for GzWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(CHUNK - self.pending.len());
        self.pending.extend_from_slice(&buf[..n]);
        if self.pending.len() == CHUNK {
            let full = std::mem::take(&mut self.pending);
            self.chunk(&full)?;
            self.pending = full;
            self.pending.clear();
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Shannon entropy of the byte distribution, bits per byte.
fn entropy(data: &[u8]) -> f64 {
    if data.is_empty() {
        return 0.0;
    }
    let mut counts = [0u64; 256];
    for &b in data {
        counts[b as usize] += 1;
    }
    let n = data.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n;
            -p * p.log2()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn random(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    fn gz(data: &[u8], piece: usize) -> Vec<u8> {
        let mut w = GzWriter::new(Vec::new()).unwrap();
        for p in data.chunks(piece) {
            w.write_all(p).unwrap();
        }
        w.finish().unwrap()
    }

    #[test]
    fn round_trips_deterministically_and_stores_noise() {
        let text: Vec<u8> = b"line of text that compresses well\n"
            .iter()
            .copied()
            .cycle()
            .take(3 << 20)
            .collect();
        // Random files in a tar: zero-padded headers between them.
        let noise: Vec<u8> = random(3 << 20, 7)
            .chunks(15 << 10)
            .flat_map(|c| {
                let mut h = vec![0u8; 512];
                h[..9].copy_from_slice(b"data/file");
                h.extend_from_slice(c);
                h
            })
            .collect();
        let mut mixed = text.clone();
        mixed.extend_from_slice(&noise);
        mixed.extend_from_slice(&text[..12345]);
        for data in [&text, &noise, &mixed, &Vec::new()] {
            let a = gz(data, 64 << 10);
            // Same bytes however they are written: same blob.
            assert_eq!(a, gz(data, 7777));
            let mut back = Vec::new();
            flate2::read::GzDecoder::new(&a[..])
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(&back, data);
        }
        // Compressible input: exactly what GzEncoder at level 6 gives.
        let mut e = flate2::write::GzEncoder::new(Vec::new(), Compression::new(6));
        e.write_all(&text).unwrap();
        assert_eq!(gz(&text, 1 << 16), e.finish().unwrap());
        // Noise: stored (never smaller than the input, as deflate would
        // make it by squeezing the headers; a few bytes per 64 KiB over).
        let n = gz(&noise, 1 << 16).len();
        assert!(
            n >= noise.len() && n < noise.len() + noise.len() / 1000,
            "{n}"
        );
        // Mixed: the text parts still compress.
        let m = gz(&mixed, 1 << 16).len();
        assert!(m < noise.len() + 200_000, "{m}");
    }
}
