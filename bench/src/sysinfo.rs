//! What the report says about the machine: cores, CPU, memory, kernel, the disk.

use std::path::Path;

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// Number of CPUs this process may use (what `nproc` prints).
pub fn nproc() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// The CPU model name from `/proc/cpuinfo`.
pub fn cpu_model() -> String {
    read("/proc/cpuinfo")
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// Total memory from `/proc/meminfo`, in GiB.
pub fn memory_gib() -> Option<f64> {
    let s = read("/proc/meminfo")?;
    let line = s.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / (1024.0 * 1024.0))
}

/// The kernel release.
pub fn kernel() -> String {
    read("/proc/sys/kernel/osrelease").map_or_else(|| "unknown".into(), |s| s.trim().to_string())
}

/// The device and file system holding `dir` (from `/proc/mounts`), with the block
/// device's rotational flag when it is known.
pub fn disk_of(dir: &Path) -> String {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let Some(mounts) = read("/proc/mounts") else {
        return "unknown".into();
    };
    let best = mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some((f.next()?, f.next()?, f.next()?))
        })
        .filter(|(_, mount_point, _)| dir.starts_with(mount_point))
        .max_by_key(|(_, mount_point, _)| mount_point.len());
    let Some((device, mount_point, fs)) = best else {
        return "unknown".into();
    };
    let mut out = format!("{device} mounted on {mount_point} ({fs})");
    if let Some(name) = device.strip_prefix("/dev/") {
        let base = name.trim_end_matches(|c: char| c.is_ascii_digit());
        for candidate in [name, base] {
            if let Some(r) = read(&format!("/sys/block/{candidate}/queue/rotational")) {
                out.push_str(&format!(", /sys/block/{candidate} rotational={}", r.trim()));
                break;
            }
        }
    }
    out
}

/// Bytes this process (all its threads) has caused to be written to storage, from the
/// `write_bytes` line of `/proc/self/io`; `None` where the kernel does not account it.
pub fn process_write_bytes() -> Option<u64> {
    let s = read("/proc/self/io")?;
    let line = s.lines().find(|l| l.starts_with("write_bytes:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Total size of the files under `dir` (recursively; symbolic links not followed). A
/// file that a background compaction deletes during the walk counts as absent.
pub fn dir_bytes(dir: &Path) -> std::io::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = match entry.metadata() {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if meta.is_dir() {
            total += dir_bytes(&entry.path())?;
        } else if meta.is_file() {
            total += meta.len();
        }
    }
    Ok(total)
}
