use super::*;

const B: &str = "XyZ";

fn body(parts: &[(&str, &str)]) -> Vec<u8> {
    let mut v = Vec::new();
    for (name, data) in parts {
        v.extend_from_slice(
            format!("--{B}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{data}\r\n").as_bytes(),
        );
    }
    v.extend_from_slice(format!("--{B}--\r\n").as_bytes());
    v
}

/// Feed `input` in `chunk`-byte pieces; the parts, or the error.
fn parse_all(input: &[u8], chunk: usize, limits: Limits) -> Result<Vec<(PartHead, Vec<u8>)>, FormError> {
    let mut p = Parser::new(B, limits)?;
    let mut out: Vec<(PartHead, Vec<u8>)> = Vec::new();
    let mut chunks = input.chunks(chunk.max(1));
    loop {
        match p.next()? {
            Some(Event::Part(h)) => out.push((h, Vec::new())),
            Some(Event::Data(d)) => {
                out.last_mut().ok_or(FormError::Malformed("data before a part"))?.1.extend_from_slice(&d)
            }
            Some(Event::End) => return Ok(out),
            None => match chunks.next() {
                Some(c) => p.push(c),
                None => p.finish(),
            },
        }
    }
}

#[test]
fn parts_arrive_whole_however_chunked() {
    let input = body(&[("a", "one"), ("file", "two\r\n--XY\r\n--Xy"), ("empty", "")]);
    for chunk in [1, 2, 3, 5, 7, 64, 4096] {
        let parts = parse_all(&input, chunk, LIMITS).unwrap();
        let got: Vec<(&str, &[u8])> = parts.iter().map(|(h, d)| (h.name.as_str(), d.as_slice())).collect();
        assert_eq!(
            got,
            [("a", &b"one"[..]), ("file", b"two\r\n--XY\r\n--Xy"), ("empty", b"")],
            "chunk {chunk}"
        );
    }
}

#[test]
fn headers_are_read() {
    let input = format!(
        "preamble\r\n--{B}  \r\ncontent-disposition: form-data; name=\"file\"; filename=\"a.png\"\r\nContent-Type: image/png\r\nX-Other: 1\r\n\r\nPNG\r\n--{B}--"
    );
    let parts = parse_all(input.as_bytes(), 3, LIMITS).unwrap();
    assert_eq!(
        parts[0].0,
        PartHead {
            name: "file".into(),
            filename: Some("a.png".into()),
            content_type: Some("image/png".into())
        }
    );
    assert_eq!(parts[0].1, b"PNG");
}

#[test]
fn bounds_hold() {
    let small = Limits { preamble: 10, part_headers: 80, parts: 2 };
    let mut long_preamble = vec![b'p'; 11];
    long_preamble.extend_from_slice(&body(&[("a", "1")]));
    assert_eq!(parse_all(&long_preamble, 4, small), Err(FormError::PreambleTooLong));
    let ok_preamble = [&b"pppppppp\r\n"[..], &body(&[("a", "1")])].concat();
    assert!(parse_all(&ok_preamble, 4, small).is_ok());
    assert_eq!(
        parse_all(&body(&[("a", "1"), ("b", "2"), ("c", "3")]), 5, small),
        Err(FormError::TooManyParts)
    );
    let big_name = "n".repeat(80);
    assert_eq!(parse_all(&body(&[(&big_name, "1")]), 5, small), Err(FormError::HeadersTooLong));
    let endless = format!("--{B}\r\nX: {}", "h".repeat(1000));
    assert_eq!(parse_all(endless.as_bytes(), 7, small), Err(FormError::HeadersTooLong));
}

#[test]
fn broken_forms_are_refused() {
    let cut = &body(&[("a", "123")])[..20];
    assert_eq!(parse_all(cut, 3, LIMITS), Err(FormError::Truncated));
    assert_eq!(parse_all(b"", 3, LIMITS), Err(FormError::Truncated));
    for bad in [
        format!("--{B}\r\nContent-Type: x/y\r\n\r\nd\r\n--{B}--"),
        format!("--{B}\r\nContent-Disposition: attachment; name=a\r\n\r\nd\r\n--{B}--"),
        format!("--{B}\r\nContent-Disposition: form-data\r\n\r\nd\r\n--{B}--"),
        format!("--{B}x\r\nContent-Disposition: form-data; name=a\r\n\r\nd\r\n--{B}--"),
        format!("--{B}\r\nContent-Disposition: form-data; name=a; name=b\r\n\r\nd\r\n--{B}--"),
        format!("--{B}\r\nContent-Disposition: form-data; name=a\r\n folded\r\n\r\nd\r\n--{B}--"),
    ] {
        assert!(matches!(parse_all(bad.as_bytes(), 4, LIMITS), Err(FormError::Malformed(_))), "{bad:?}");
    }
    assert!(Parser::new("a\r\nb", LIMITS).is_err());
}

#[test]
fn kept_bytes_stay_below_one_delimiter() {
    // A body that keeps almost matching the delimiter never makes the parser hold more.
    let mut p = Parser::new(B, LIMITS).unwrap();
    p.push(format!("--{B}\r\nContent-Disposition: form-data; name=f\r\n\r\n").as_bytes());
    assert!(matches!(p.next(), Ok(Some(Event::Part(_)))));
    let mut out = 0usize;
    for _ in 0..10_000 {
        p.push(b"\r\n--Xy");
        while let Ok(Some(Event::Data(d))) = p.next() {
            out += d.len();
        }
        assert!(p.buf.len() < p.delim.len(), "{}", p.buf.len());
    }
    assert!(out >= 9_999 * 6);
}

mod proptests {
    use super::*;
    use proptest::prelude::*;

    /// RFC 2046 boundary characters, no space at the end.
    fn boundary() -> impl Strategy<Value = String> {
        "[A-Za-z0-9'()+_,./:=?-]{1,20}( [A-Za-z0-9-]{1,5})?"
    }

    /// Part bodies rich in CR, LF, dashes and boundary prefixes: the near-misses.
    fn data() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(prop_oneof![Just(b'\r'), Just(b'\n'), Just(b'-'), any::<u8>()], 0..200)
    }

    fn form(b: &str, parts: &[(String, Vec<u8>)], preamble: &[u8]) -> Vec<u8> {
        let mut v = preamble.to_vec();
        if !preamble.is_empty() {
            v.extend_from_slice(b"\r\n");
        }
        for (name, data) in parts {
            v.extend_from_slice(
                format!("--{b}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            );
            v.extend_from_slice(data);
            v.extend_from_slice(b"\r\n");
        }
        v.extend_from_slice(format!("--{b}--").as_bytes());
        v
    }

    /// Feed `input` split at `cuts`; the events' parts, or the error.
    fn run(b: &str, input: &[u8], cuts: &[usize]) -> Result<Vec<(String, Vec<u8>)>, FormError> {
        let mut p = Parser::new(b, LIMITS)?;
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
        points.push(input.len());
        points.sort_unstable();
        let mut pieces = Vec::new();
        let mut at = 0;
        for q in points {
            pieces.push(&input[at..q]);
            at = q;
        }
        let mut pieces = pieces.into_iter();
        let mut out: Vec<(String, Vec<u8>)> = Vec::new();
        loop {
            match p.next()? {
                Some(Event::Part(h)) => out.push((h.name, Vec::new())),
                Some(Event::Data(d)) => {
                    assert!(!d.is_empty(), "empty data event");
                    out.last_mut().expect("data inside a part").1.extend_from_slice(&d);
                }
                Some(Event::End) => return Ok(out),
                None => match pieces.next() {
                    Some(c) => {
                        p.push(c);
                        // Memory: never more than what a header block may hold, plus a piece.
                        assert!(p.buf.len() <= LIMITS.part_headers + c.len() + p.delim.len());
                    }
                    None => p.finish(),
                },
            }
        }
    }

    proptest! {
        #![proptest_config(crate::fuzz::config())]

        /// Any form, split anywhere, parses to exactly its parts.
        #[test]
        fn forms_round_trip(
            b in boundary(),
            parts in prop::collection::vec(("[a-z]{1,8}", data()), 0..6),
            preamble in prop::collection::vec(any::<u8>(), 0..64),
            cuts in prop::collection::vec(any::<usize>(), 0..40),
        ) {
            let delim = format!("\r\n--{b}");
            let hits = |d: &[u8]| [b"\r\n".as_slice(), d, b"\r\n"].concat().windows(delim.len()).any(|w| w == delim.as_bytes());
            prop_assume!(parts.iter().all(|(_, d)| !hits(d)));
            prop_assume!(!hits(&preamble) && !preamble.windows(2 + b.len()).any(|w| w == format!("--{b}").as_bytes()));
            let input = form(&b, &parts, &preamble);
            let got = run(&b, &input, &cuts).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
            prop_assert_eq!(got, parts);
        }

        /// Arbitrary bytes never panic, and never grow the parser past its bounds.
        #[test]
        fn arbitrary_bytes_are_refused_or_parsed(
            b in boundary(),
            input in prop::collection::vec(prop_oneof![Just(b'\r'), Just(b'\n'), Just(b'-'), any::<u8>()], 0..600),
            cuts in prop::collection::vec(any::<usize>(), 0..20),
        ) {
            let mut input = input;
            // Start like a form half the time, so the parser gets past the preamble.
            if input.first().is_some_and(|x| x % 2 == 0) {
                input.splice(0..0, format!("--{b}\r\nContent-Disposition: form-data; name=f\r\n\r\n").into_bytes());
            }
            let _ = run(&b, &input, &cuts);
        }
    }
}
