//! The little JSON the commands print and read (ids lists).

/// `s` as a JSON string.
pub fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Ids as a JSON array.
pub fn ids(ids: &[u32]) -> String {
    let parts: Vec<String> = ids.iter().map(u32::to_string).collect();
    format!("[{}]", parts.join(","))
}

/// A finite number (JSON has no NaN or infinity: those become null).
pub fn num(x: f64) -> String {
    if x.is_finite() { format!("{x}") } else { "null".into() }
}

/// The ids of a JSON array of integers, or of the `"ids"` array of a JSON object
/// (llama.cpp reference files), or of a comma-separated list.
pub fn parse_ids(text: &str) -> Result<Vec<u32>, String> {
    let body = match text.find("\"ids\"") {
        Some(at) => &text[at + 5..],
        None => text,
    };
    let start = body.find('[').map_or(0, |i| i + 1);
    let end = body[start..].find(']').map_or(body.len(), |i| start + i);
    body[start..end]
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<u32>().map_err(|_| format!("{s:?} is not a token id")))
        .collect()
}
