//! The bodies of Berth's fuzz targets. Each takes the fuzzer's bytes, must
//! not panic, and asserts a property where one exists (round trips, nothing
//! written outside a temp dir). `fuzz_targets/*.rs` hand them to libFuzzer;
//! the tests below run each target over its committed corpus
//! (`corpus/<target>/`), so CI checks the seeds and every regression input
//! without cargo fuzz.

use std::net::Ipv4Addr;

#[cfg(feature = "builder")]
/// `dockerfile`: the Dockerfile parser, word expansion, `.dockerignore` and
/// its globs. Input: a Dockerfile; after a NUL, an ignore file and a path.
pub fn dockerfile(data: &[u8]) {
    use berth_builder::dockerfile::{expand, glob, ignore};
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(3, '\0');
    let dockerfile = parts.next().unwrap_or("");
    let first = berth_builder::dockerfile::parse("Dockerfile", dockerfile);
    // Parsing is a function of the text.
    let again = berth_builder::dockerfile::parse("Dockerfile", dockerfile);
    match (&first, &again) {
        (Ok(a), Ok(b)) => assert_eq!(a, b),
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
        _ => panic!("parse differs between two runs"),
    }
    let vars = |name: &str| name.len().is_multiple_of(2).then(|| format!("<{name}>"));
    for esc in ['\\', '`'] {
        let _ = expand::expand(dockerfile, esc, &vars);
        let _ = expand::expand_words(dockerfile, esc, &vars);
    }
    let _ = expand::expand_heredoc(dockerfile, &vars);
    let _ = expand::parse_duration(dockerfile);
    let _ = berth_builder::dockerfile::checksum_value(dockerfile);
    if let (Some(ignore_text), Some(path)) = (parts.next(), parts.next()) {
        let ig = ignore::Ignore::parse(ignore_text);
        let _ = ig.excluded(path);
        let _ = ig.may_include_under(path);
        let cleaned = ignore::clean(path);
        // clean is idempotent.
        assert_eq!(ignore::clean(&cleaned), cleaned, "clean({path:?})");
        for (pat, _) in &ig.patterns {
            let _ = glob::matches(pat, &cleaned);
            let _ = glob::is_pattern(pat);
        }
    }
}

/// `reference`: image references, digests and platforms. A reference that
/// parses prints as one that parses to the same thing.
pub fn reference(data: &[u8]) {
    use berth_image::Reference;
    use berth_image::formats::Platform;
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(r) = s.parse::<Reference>() {
        let shown = r.to_string();
        let back: Reference = shown
            .parse()
            .unwrap_or_else(|e| panic!("{s:?} printed as {shown:?}, which fails: {e}"));
        assert_eq!(back.to_string(), shown, "{s:?}");
        assert_eq!(back.repository(), r.repository(), "{s:?}");
        assert_eq!(back.digest, r.digest, "{s:?}");
        let _ = r.familiar_repository();
        let _ = r.registry_reference();
        let _ = r.tagged();
        if let Some(t) = r.tag_or_latest() {
            let _ = r.with_tag(t);
        }
    }
    if let Ok(d) = s.parse::<berth_image::Digest>() {
        let shown = d.to_string();
        assert_eq!(shown.parse::<berth_image::Digest>().ok(), Some(d), "{s:?}");
    }
    if let Ok(p) = s.parse::<Platform>() {
        let shown = p.to_string();
        assert_eq!(shown.parse::<Platform>().ok(), Some(p), "{s:?}");
    }
}

/// `image_json`: manifests, indexes and image configs. First byte: which
/// Content-Type the registry sent. Whatever parses re-serialises to JSON
/// that parses to the same value.
pub fn image_json(data: &[u8]) {
    use berth_image::formats::{
        Compression, Index, Manifest, ManifestKind, Platform, parse_config, parse_manifest,
        select_platform,
    };
    let Some((&ct, bytes)) = data.split_first() else {
        return;
    };
    let content_type = [
        None,
        Some("application/vnd.oci.image.manifest.v1+json"),
        Some("application/vnd.oci.image.index.v1+json"),
        Some("application/vnd.docker.distribution.manifest.v2+json"),
        Some("application/vnd.docker.distribution.manifest.list.v2+json"),
        Some("application/json; charset=utf-8"),
    ][usize::from(ct) % 6];
    match parse_manifest(bytes, content_type) {
        Ok(ManifestKind::Image(m)) => {
            let json = serde_json::to_vec(&m).expect("a manifest serialises");
            let back: Manifest = serde_json::from_slice(&json).expect("own manifest parses");
            assert_eq!(&back, m.as_ref());
            for l in &m.layers {
                let _ = Compression::of_layer(&l.media_type);
            }
        }
        Ok(ManifestKind::Index(i)) => {
            let json = serde_json::to_vec(&i).expect("an index serialises");
            let back: Index = serde_json::from_slice(&json).expect("own index parses");
            assert_eq!(back, i);
            let _ = select_platform(&i, &Platform::host());
        }
        Err(_) => {}
    }
    if let Ok(c) = parse_config(bytes) {
        let json = serde_json::to_vec(&c).expect("a config serialises");
        let back = parse_config(&json).expect("own config parses");
        if !c.history.iter().any(has_float) {
            assert_eq!(back, c);
        }
    }
}

#[cfg(feature = "api")]
/// `api_request`: the Docker API's query strings and JSON bodies. Input: a
/// query string, then after the first newline a body. The `filters`
/// parameter goes through every endpoint's filter parser; the body through
/// the create, exec, update, volume and network request types.
pub fn api_request(data: &[u8]) {
    use berth_api::request::{filters, json_body, query_pairs};
    use berth_engine::prune::PruneFilter;
    let (query, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let q = query_pairs(&String::from_utf8_lossy(query));
    if let Ok(f) = filters(&q) {
        let _ = PruneFilter::from_value(&f, &["until", "label", "label!", "dangling"]);
        let _ = berth_engine::volume::parse_filters(&f);
    }
    if let Some(f) = q.get("filters") {
        let _ = PruneFilter::parse(f, &["until", "label", "label!"]);
        let _ = berth_engine::EventFilter::parse(f);
    }
    let _ = json_body::<berth_engine::CreateRequest>(body);
    let _ = json_body::<berth_engine::ExecConfig>(body);
    let _ = json_body::<berth_engine::volume::VolumeCreate>(body);
    let _ = json_body::<berth_engine::network::NetworkCreate>(body);
    if let Ok(v) = json_body::<serde_json::Value>(body) {
        let json = serde_json::to_vec(&v).expect("a value serialises");
        let back = json_body::<serde_json::Value>(&json).expect("own JSON parses");
        if !has_float(&v) {
            assert_eq!(back, v);
        }
    }
}

/// serde_json (without `float_roundtrip`) may read a printed float back one
/// ulp off: equality after a round trip holds only without floats.
fn has_float(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Number(n) => n.is_f64(),
        serde_json::Value::Array(a) => a.iter().any(has_float),
        serde_json::Value::Object(o) => o.values().any(has_float),
        _ => false,
    }
}

/// `dns`: the embedded DNS server's codec. A query that parses gets a
/// response that parses back with its answers and is never taken for a
/// query; its question re-encodes to the same question.
pub fn dns(data: &[u8]) {
    use berth_network::dns::{
        ParseError, RCODE_NOERROR, Rdata, build_response, encode_query, error_response,
        parse_query, parse_response_a,
    };
    let _ = parse_response_a(data);
    let q = match parse_query(data) {
        Ok(q) => q,
        Err(ParseError::Malformed { id, rcode }) => {
            let resp = error_response(id, rcode);
            assert_eq!(parse_response_a(&resp), Some((rcode, Vec::new())));
            return;
        }
        Err(_) => return,
    };
    let ips = [
        Ipv4Addr::new(10, 0, 0, 1),
        Ipv4Addr::from(q.question.qtype as u32),
    ];
    let answers = [
        Rdata::A(ips[0]),
        Rdata::Ptr(q.question.name.clone()),
        Rdata::A(ips[1]),
    ];
    let resp = build_response(data, &q, RCODE_NOERROR, &answers);
    assert_eq!(parse_response_a(&resp), Some((RCODE_NOERROR, ips.to_vec())));
    assert_eq!(parse_query(&resp), Err(ParseError::NotAQuery));
    let again = encode_query(q.id, &q.question.name, q.question.qtype);
    let parsed = parse_query(&again).expect("a re-encoded question parses");
    assert_eq!(parsed.question.name, q.question.name);
    assert_eq!(parsed.question.qtype, q.question.qtype);
}

/// `tar_unpack`: the layer unpacker on a temp dir. First byte even: the rest
/// is a tar stream as is; odd: a compact description of entries (kinds,
/// paths, link targets made of `..`, `/`, whiteout names and the temp dir's
/// own parent) made into a tar with valid checksums, so the fuzzer spends its
/// time on hostile layouts rather than on header checksums. Whatever the
/// outcome, nothing outside the layer dir changes: its parent holds exactly
/// the layer dir and an untouched sentinel.
pub fn tar_unpack(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let parent = tempfile::tempdir().expect("temp dir");
    let root = parent.path().join("layer");
    std::fs::create_dir(&root).expect("layer dir");
    let sentinel = parent.path().join("sentinel");
    std::fs::write(&sentinel, b"untouched").expect("sentinel");
    let tar = if mode % 2 == 0 {
        rest.to_vec()
    } else {
        synth_tar(rest, parent.path().to_str().expect("utf-8 temp path"))
    };
    let opts = berth_image::unpack::UnpackOptions {
        owner: (mode & 2 != 0).then_some((1000, 1000)),
        whiteouts: mode & 4 == 0,
        no_overwrite_dir_non_dir: mode & 8 != 0,
        ..Default::default()
    };
    let _ = berth_image::unpack::unpack_with(tar.as_slice(), &root, opts);
    let mut names: Vec<_> = std::fs::read_dir(parent.path())
        .expect("read temp dir")
        .map(|e| e.expect("dir entry").file_name())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["layer", "sentinel"],
        "something escaped the layer dir"
    );
    assert_eq!(std::fs::read(&sentinel).expect("sentinel"), b"untouched");
    assert!(
        std::fs::symlink_metadata(&root)
            .expect("layer dir")
            .is_dir()
    );
}

/// Entries from bytes: [kind, path tokens, link tokens, content length,
/// mode, device] repeated; see [`tar_unpack`].
fn synth_tar(mut d: &[u8], parent: &str) -> Vec<u8> {
    const PATH: [&str; 8] = ["a", "b", "/", ".", "..", ".wh.", ".wh..wh..opq", "c/"];
    let link_tokens: [&str; 8] = ["a", "b", "/", ".", "..", "c/", parent, "/proc/self/root"];
    let take = |n: usize, d: &mut &[u8]| -> Vec<u8> {
        let n = n.min(d.len());
        let (h, t) = d.split_at(n);
        *d = t;
        h.to_vec()
    };
    let mut out = Vec::new();
    while d.len() >= 5 {
        let spec = take(5, &mut d);
        let kind = [
            tar_type::REGULAR,
            tar_type::DIRECTORY,
            tar_type::SYMLINK,
            tar_type::LINK,
            tar_type::CHAR,
            tar_type::BLOCK,
            tar_type::FIFO,
            tar_type::REGULAR,
        ][usize::from(spec[0] % 8)];
        let tokens = |bytes: Vec<u8>, alphabet: &[&str]| -> Vec<u8> {
            bytes
                .iter()
                .flat_map(|b| alphabet[usize::from(*b) % alphabet.len()].bytes())
                .collect()
        };
        let path = tokens(take(usize::from(spec[1] % 8), &mut d), &PATH);
        let link = tokens(take(usize::from(spec[2] % 4), &mut d), &link_tokens);
        let content = if kind == tar_type::REGULAR {
            take(usize::from(spec[3] % 16), &mut d)
        } else {
            Vec::new()
        };
        let mut h = [0u8; 512];
        put(&mut h[0..100], &path);
        octal(&mut h[100..108], (0o644 ^ u64::from(spec[4]) << 3) & 0o7777);
        octal(&mut h[108..116], u64::from(spec[3]));
        octal(&mut h[116..124], u64::from(spec[3]));
        octal(&mut h[124..136], content.len() as u64);
        octal(&mut h[136..148], 0);
        h[156] = kind;
        put(&mut h[157..257], &link);
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        // Device numbers: major 0 (unnamed devices), never a real disk.
        octal(&mut h[329..337], 0);
        octal(&mut h[337..345], u64::from(spec[4]));
        h[148..156].fill(b' ');
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        octal(&mut h[148..155], u64::from(sum));
        h[155] = 0;
        out.extend_from_slice(&h);
        out.extend_from_slice(&content);
        out.resize(out.len().next_multiple_of(512), 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

mod tar_type {
    pub const REGULAR: u8 = b'0';
    pub const LINK: u8 = b'1';
    pub const SYMLINK: u8 = b'2';
    pub const CHAR: u8 = b'3';
    pub const BLOCK: u8 = b'4';
    pub const DIRECTORY: u8 = b'5';
    pub const FIFO: u8 = b'6';
}

fn put(field: &mut [u8], value: &[u8]) {
    let n = value.len().min(field.len());
    field[..n].copy_from_slice(&value[..n]);
}

/// A NUL-terminated octal number filling `field`.
fn octal(field: &mut [u8], v: u64) {
    let s = format!("{v:0width$o}", width = field.len() - 1);
    put(field, &s.as_bytes()[s.len() + 1 - field.len()..]);
}

/// Every file of `corpus/<target>/`, for the tests.
pub fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("corpus entry").path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let data = std::fs::read(&p).expect("corpus file");
            (p.display().to_string(), data)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(target: &str, f: fn(&[u8])) {
        let files = corpus(target);
        assert!(!files.is_empty(), "no corpus for {target}");
        for (name, data) in files {
            eprintln!("{target}: {name}");
            f(&data);
        }
    }

    #[cfg(feature = "builder")]
    #[test]
    fn dockerfile_corpus() {
        run("dockerfile", dockerfile);
    }

    #[test]
    fn reference_corpus() {
        run("reference", reference);
    }

    #[test]
    fn image_json_corpus() {
        run("image_json", image_json);
    }

    #[test]
    fn tar_unpack_corpus() {
        run("tar_unpack", tar_unpack);
    }

    #[cfg(feature = "api")]
    #[test]
    fn api_request_corpus() {
        run("api_request", api_request);
    }

    #[test]
    fn dns_corpus() {
        run("dns", dns);
    }

    /// The synthesised tar is one the tar crate reads back entry for entry.
    #[test]
    fn synth_tar_is_valid_tar() {
        let t = synth_tar(&[0, 1, 0, 3, 0o64, 0, b'x', b'y', b'z'], "/tmp/p");
        let mut a = berth_image_tar(&t);
        let e = a.next().expect("one entry").expect("valid header");
        assert_eq!(e.0, b"a".to_vec());
        assert_eq!(e.1, b"xyz".to_vec());
        assert!(a.next().is_none());
    }

    fn berth_image_tar(t: &[u8]) -> impl Iterator<Item = std::io::Result<(Vec<u8>, Vec<u8>)>> {
        use std::io::Read;
        let mut out = Vec::new();
        let mut ar = tar::Archive::new(t);
        for e in ar.entries().expect("entries") {
            out.push(e.and_then(|mut e| {
                let mut v = Vec::new();
                e.read_to_end(&mut v)?;
                Ok((e.path_bytes().into_owned(), v))
            }));
        }
        out.into_iter()
    }
}
