//! Human output of `roost ctl`: a list as aligned columns, an object as
//! `key: value` lines.

use serde_json::Value;

fn cell(value: &Value) -> String {
    match value {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Prints `value`: `{"data": [...], "meta": {...}}` or an array as rows of
/// `columns` (every key of the first row when empty), an object as lines.
pub(crate) fn print(value: &Value, columns: &[&str]) {
    if let Some(rows) = value.get("data").and_then(Value::as_array) {
        rows_table(rows, columns);
        if let Some(meta) = value.get("meta") {
            println!(
                "(page {}, {} of {}{})",
                cell(&meta["page"]),
                rows.len(),
                cell(&meta["count"]),
                if meta["hasnext"] == Value::Bool(true) {
                    ", more with --page"
                } else {
                    ""
                }
            );
        }
        return;
    }
    match value {
        Value::Array(rows) => rows_table(rows, columns),
        Value::Object(map) => {
            let width = map.keys().map(String::len).max().unwrap_or(0);
            for (key, value) in map {
                println!("{key:width$}  {}", cell(value));
            }
        }
        Value::Null => {}
        other => println!("{}", cell(other)),
    }
}

fn rows_table(rows: &[Value], columns: &[&str]) {
    if rows.is_empty() {
        println!("(none)");
        return;
    }
    let columns: Vec<String> = if columns.is_empty() {
        rows[0]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    } else {
        // A column no row has (`node` outside a cluster) is left out.
        columns
            .iter()
            .filter(|c| rows.iter().any(|r| r.get(**c).is_some()))
            .map(|c| (*c).to_string())
            .collect()
    };
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| columns.iter().map(|c| cell(&row[c.as_str()])).collect())
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            cells
                .iter()
                .map(|r| r[i].chars().count())
                .chain([c.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |values: Vec<String>| {
        let parts: Vec<String> = values
            .iter()
            .zip(&widths)
            .map(|(v, w)| format!("{v:w$}"))
            .collect();
        println!("{}", parts.join("  ").trim_end());
    };
    line(columns.iter().map(|c| c.to_ascii_uppercase()).collect());
    for row in cells {
        line(row);
    }
}
