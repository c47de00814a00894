//! Writing files that readers never see half of: every file mm-trace writes (profiles, golden
//! and slow traces, Prometheus text files, Chrome traces), and perf-gate's reports.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::Error;

/// Writes `contents` to `path`, creating missing parent directories, and replaces the file
/// atomically: the text goes to a temporary file in the same directory, which is then renamed
/// over `path`, so a reader sees the old file or the new one, never part of one.
///
/// The temporary name (`.<file name>.tmp-<pid>-<n>`) is unique per call, so concurrent writers
/// of one path, in one process or several, never share a temporary file; the last rename wins.
/// On failure the temporary file is removed and the error names the directory or file at fault.
///
/// ```
/// let dir = std::env::temp_dir().join(format!("mm-trace-fs-doc-{}", std::process::id()));
/// let path = dir.join("reports/perf_gate_report.md");
/// mm_trace::fs::write_file(&path, "# old\n").unwrap();
/// mm_trace::fs::write_file(&path, "# new\n").unwrap();
/// assert_eq!(std::fs::read_to_string(&path).unwrap(), "# new\n");
/// assert_eq!(std::fs::read_dir(path.parent().unwrap()).unwrap().count(), 1, "no temporary file left");
///
/// let err = mm_trace::fs::write_file(&dir, "x").unwrap_err(); // a directory is in the way
/// assert!(matches!(err, mm_trace::Error::Io { ref path, .. } if *path == dir), "{err}");
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub fn write_file(path: &Path, contents: &str) -> Result<(), Error> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| Error::Io { path, source }
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let Some(file_name) = path.file_name() else {
        return Err(Error::Io { path: path.to_owned(), source: std::io::ErrorKind::InvalidInput.into() });
    };
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(file_name);
    // Unique per call: concurrent writers of one path must not share (and tear) a temp file.
    // Relaxed: only uniqueness of the value matters, not its order relative to other memory.
    static NEXT_TMP: AtomicU64 = AtomicU64::new(0);
    let n = NEXT_TMP.fetch_add(1, Ordering::Relaxed);
    tmp_name.push(format!(".tmp-{}-{n}", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    std::fs::write(&tmp, contents).map_err(io(path))?;
    std::fs::rename(&tmp, path).map_err(|source| {
        let _ = std::fs::remove_file(&tmp);
        Error::Io { path: path.to_owned(), source }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two threads replacing one file over and over: every read sees one writer's whole text,
    /// no write fails, no temporary file is left.
    #[test]
    fn concurrent_writers_of_one_path_never_tear_or_fail() {
        let dir = std::env::temp_dir().join(format!("mm-trace-fs-race-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("out.txt");
        let texts = ["a".repeat(64 * 1024), "b".repeat(96 * 1024)];
        let (path, texts) = (&path, &texts);
        let failures: Vec<String> = std::thread::scope(|s| {
            let writers: Vec<_> = texts
                .iter()
                .map(|text| {
                    s.spawn(move || {
                        let mut failures = Vec::new();
                        for _ in 0..300 {
                            if let Err(e) = write_file(path, text) {
                                failures.push(e.to_string());
                            }
                            match std::fs::read_to_string(path) {
                                Ok(t) if texts.contains(&t) => {}
                                Ok(t) => failures.push(format!("torn file of {} bytes", t.len())),
                                Err(e) => failures.push(e.to_string()),
                            }
                        }
                        failures
                    })
                })
                .collect();
            writers.into_iter().flat_map(|w| w.join().unwrap()).collect()
        });
        let left = std::fs::read_dir(&dir).unwrap().count();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(failures.is_empty(), "{} failures, first: {:?}", failures.len(), failures.first());
        assert_eq!(left, 1, "no temporary file left");
    }

    #[test]
    fn a_path_without_a_file_name_is_an_error_naming_it() {
        let err = write_file(Path::new("/"), "x").unwrap_err();
        assert!(matches!(err, Error::Io { ref path, .. } if path == Path::new("/")), "{err:?}");
    }
}
