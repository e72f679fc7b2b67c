//! Decompression throughput with the pull path's decoder (flate2 on zlib-rs),
//! for bench/pull: `gunzip FILE` prints MB/s of output, plain and with the
//! two sha256 passes a pull also does (blob and diff ID).

use std::io::{BufReader, Read};
use std::time::Instant;

fn main() {
    let path = std::env::args().nth(1).expect("usage: gunzip FILE.gz");
    let data = std::fs::read(&path).expect("read");
    for hashed in [false, true] {
        let t = Instant::now();
        let mut blob_hash =
            berth_image::digest::Hasher::new(berth_image::digest::Algorithm::Sha256);
        if hashed {
            blob_hash.update(&data);
        }
        let mut dec =
            flate2::bufread::MultiGzDecoder::new(BufReader::with_capacity(256 << 10, &data[..]));
        let mut diff = berth_image::digest::Hasher::new(berth_image::digest::Algorithm::Sha256);
        let mut buf = vec![0u8; 256 << 10];
        let mut total = 0u64;
        loop {
            let n = dec.read(&mut buf).expect("gunzip");
            if n == 0 {
                break;
            }
            if hashed {
                diff.update(&buf[..n]);
            }
            total += n as u64;
        }
        let s = t.elapsed().as_secs_f64();
        println!(
            "{} {:.3} s {:.0} MB/s ({} MB out)",
            if hashed {
                "zlib-rs+2xsha256"
            } else {
                "zlib-rs"
            },
            s,
            total as f64 / s / 1e6,
            total / 1_000_000
        );
    }
}
