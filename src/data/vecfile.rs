//! Vector files: NumPy `.npy` (C or Fortran order; float32, float64, uint8, int32) and
//! the TexMex `.fvecs` / `.ivecs` / `.bvecs` formats used by ann-benchmarks.

use std::path::Path;

use super::{DocIds, Queries, RawDataset};
use crate::driver::Metric;
use crate::error::{Error, Result};
use crate::spec::DatasetPlan;

/// A dense matrix read from a file: `rows * cols` values, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<f32>,
}

fn bad(path: &Path, message: impl Into<String>) -> Error {
    Error::Dataset { path: path.to_path_buf(), message: message.into() }
}

/// Read vectors from `.npy`, `.fvecs`, `.bvecs` or `.ivecs`, chosen by extension.
pub fn read_matrix(path: &Path) -> Result<Matrix> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    match path.extension().and_then(|e| e.to_str()) {
        Some("npy") => parse_npy(&bytes).map_err(|m| bad(path, m)),
        Some("fvecs") => {
            parse_vecs(&bytes, 4, |b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).map_err(|m| bad(path, m))
        }
        Some("ivecs") => {
            parse_vecs(&bytes, 4, |b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32).map_err(|m| bad(path, m))
        }
        Some("bvecs") => parse_vecs(&bytes, 1, |b| b[0] as f32).map_err(|m| bad(path, m)),
        _ => Err(bad(path, "unknown vector file type: use .npy, .fvecs, .ivecs or .bvecs")),
    }
}

/// Parse a NumPy v1/v2/v3 array of two dimensions (one dimension reads as one column).
pub fn parse_npy(bytes: &[u8]) -> Result<Matrix, String> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err("not a .npy file (bad magic)".into());
    }
    let major = bytes[6];
    let (header_len, start) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err("truncated .npy header".into());
            }
            (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12)
        }
        v => return Err(format!(".npy format version {v} is not supported")),
    };
    let header = bytes.get(start..start + header_len).ok_or("truncated .npy header")?;
    let header = std::str::from_utf8(header).map_err(|_| "the .npy header is not text")?;
    let descr = header_value(header, "descr").ok_or("the .npy header has no descr")?;
    let fortran = header_value(header, "fortran_order").ok_or("the .npy header has no fortran_order")? == "True";
    let shape_text = header_value(header, "shape").ok_or("the .npy header has no shape")?;
    let shape: Vec<usize> = shape_text
        .trim_matches(|c| c == '(' || c == ')')
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>().map_err(|_| format!("bad shape {shape_text}")))
        .collect::<Result<_, _>>()?;
    let (rows, cols) = match shape.as_slice() {
        [r] => (*r, 1),
        [r, c] => (*r, *c),
        _ => return Err(format!("expected a 2-D array, found shape {shape_text}")),
    };
    let descr = descr.trim_matches(|c| c == '\'' || c == '"');
    let (size, convert): (usize, fn(&[u8]) -> f32) = match descr {
        "<f4" | "=f4" => (4, |b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        "<f8" | "=f8" => (8, |b| f64::from_le_bytes(b[..8].try_into().expect("8 bytes")) as f32),
        "|u1" | "<u1" => (1, |b| b[0] as f32),
        "|i1" => (1, |b| b[0] as i8 as f32),
        "<i4" | "=i4" => (4, |b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32),
        "<f2" => return Err("float16 .npy files are not supported; convert to float32".into()),
        other => {
            return Err(format!(
                "dtype {other} is not supported (use little-endian float32, float64, uint8, int8 or int32)"
            ))
        }
    };
    let data_start = start + header_len;
    let needed = rows * cols * size;
    let body = bytes.get(data_start..data_start + needed).ok_or_else(|| {
        format!("expected {needed} bytes of data for shape {shape_text}, found {}", bytes.len() - data_start)
    })?;
    let values: Vec<f32> = body.chunks_exact(size).map(convert).collect();
    let data = if fortran && cols > 1 {
        // Column-major on disk: element (r, c) sits at c * rows + r.
        let mut out = vec![0f32; rows * cols];
        for c in 0..cols {
            for r in 0..rows {
                out[r * cols + c] = values[c * rows + r];
            }
        }
        out
    } else {
        values
    };
    Ok(Matrix { rows, cols, data })
}

/// The text of `'key': value` in a .npy header dict.
fn header_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!("'{key}':");
    let at = header.find(&pat)? + pat.len();
    let rest = header[at..].trim_start();
    let end = if rest.starts_with('(') { rest.find(')')? + 1 } else { rest.find(',').or_else(|| rest.find('}'))? };
    Some(rest[..end].trim())
}

fn parse_vecs(bytes: &[u8], size: usize, convert: fn(&[u8]) -> f32) -> Result<Matrix, String> {
    let mut data = Vec::new();
    let mut pos = 0;
    let mut cols = None;
    let mut rows = 0;
    while pos < bytes.len() {
        let head = bytes.get(pos..pos + 4).ok_or("truncated record header")?;
        let d = i32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        if d <= 0 {
            return Err(format!("record {rows} has dimension {d}"));
        }
        let d = d as usize;
        if *cols.get_or_insert(d) != d {
            return Err(format!("record {rows} has dimension {d}, the first had {}", cols.unwrap_or(0)));
        }
        pos += 4;
        let body = bytes.get(pos..pos + d * size).ok_or_else(|| format!("record {rows} is truncated"))?;
        data.extend(body.chunks_exact(size).map(convert));
        pos += d * size;
        rows += 1;
    }
    Ok(Matrix { rows, cols: cols.unwrap_or(0), data })
}

/// A vectors-only dataset: base and query vectors from files, no text.
pub fn load_vectors_dataset(plan: &DatasetPlan) -> Result<RawDataset> {
    let base_path = plan.base_vectors.as_deref().expect("validated: base_vectors");
    let query_path = plan.query_vectors.as_deref().expect("validated: query_vectors");
    let base = read_matrix(base_path)?;
    let queries = read_matrix(query_path)?;
    if base.cols != queries.cols {
        return Err(bad(
            query_path,
            format!("query vectors have {} dimensions, base vectors {}", queries.cols, base.cols),
        ));
    }
    let name = plan.name.clone().unwrap_or_else(|| {
        base_path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "vectors".into())
    });
    Ok(RawDataset {
        name,
        source: format!("vectors {} + {}", base_path.display(), query_path.display()),
        metric: plan.metric.unwrap_or(Metric::L2),
        dim: base.cols,
        doc_ids: DocIds::Numbered(base.rows),
        texts: Vec::new(),
        metadata: Vec::new(),
        judgments: None,
        vectors: base.data,
        queries: Queries {
            ids: (0..queries.rows).map(|i| i.to_string()).collect(),
            vectors: queries.data,
            texts: Vec::new(),
            judgments: None,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(descr: &str, fortran: bool, shape: &str, body: &[u8]) -> Vec<u8> {
        let mut header = format!(
            "{{'descr': '{descr}', 'fortran_order': {}, 'shape': {shape}, }}",
            if fortran { "True" } else { "False" }
        );
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend((header.len() as u16).to_le_bytes());
        out.extend(header.as_bytes());
        out.extend(body);
        out
    }

    fn f32s(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    #[test]
    fn npy_c_and_fortran_order_read_the_same_matrix() {
        // [[1, 2, 3], [4, 5, 6]]
        let c = parse_npy(&npy("<f4", false, "(2, 3)", &f32s(&[1., 2., 3., 4., 5., 6.]))).unwrap();
        let f = parse_npy(&npy("<f4", true, "(2, 3)", &f32s(&[1., 4., 2., 5., 3., 6.]))).unwrap();
        assert_eq!(c, Matrix { rows: 2, cols: 3, data: vec![1., 2., 3., 4., 5., 6.] });
        assert_eq!(c, f);
        let u8s = parse_npy(&npy("|u1", false, "(1, 2)", &[7, 255])).unwrap();
        assert_eq!(u8s.data, vec![7.0, 255.0]);
    }

    #[test]
    fn npy_errors_say_what_is_wrong() {
        assert!(parse_npy(b"nope").unwrap_err().contains("magic"));
        let short = npy("<f4", false, "(2, 3)", &f32s(&[1., 2.]));
        assert!(parse_npy(&short).unwrap_err().contains("expected 24 bytes"));
        let be = npy(">f4", false, "(1, 1)", &f32s(&[1.]));
        assert!(parse_npy(&be).unwrap_err().contains("not supported"));
    }

    #[test]
    fn fvecs_and_ivecs() {
        let mut bytes = Vec::new();
        for row in [[1f32, 2.], [3., 4.]] {
            bytes.extend(2i32.to_le_bytes());
            bytes.extend(f32s(&row));
        }
        let m = parse_vecs(&bytes, 4, |b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).unwrap();
        assert_eq!(m, Matrix { rows: 2, cols: 2, data: vec![1., 2., 3., 4.] });
        bytes.truncate(bytes.len() - 2);
        assert!(parse_vecs(&bytes, 4, |_| 0.0).unwrap_err().contains("truncated"));
    }

    #[test]
    fn scifact_vectors_when_present() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets/scifact/queries.minilm.npy");
        if !path.exists() {
            eprintln!("skipped: {} not present", path.display());
            return;
        }
        let m = read_matrix(&path).unwrap();
        assert_eq!((m.rows, m.cols), (300, 384));
        let norm: f32 = m.data[..384].iter().map(|x| x * x).sum();
        assert!((norm - 1.0).abs() < 1e-3);
    }
}
