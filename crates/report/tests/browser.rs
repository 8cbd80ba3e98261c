//! The HTML report renders in a real headless browser (Debian's chromium) to a non-blank page.
//!
//! Set `WASMBENCH_KEEP_SCREENSHOT=DIR` to keep the report and screenshots for inspection.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use wasmbench_report::{Comparison, Format, render};

const CHROMIUM: &str = "/usr/bin/chromium";

/// Kills the browser if the test stops early.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn screenshot(html: &Path, png: &Path, profile: &Path) -> Result<(), String> {
    let child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg("--window-size=1200,2000")
        .arg(format!("file://{}", html.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {CHROMIUM}: {e}"))?;
    let mut guard = Guard(child);
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Some(status) = guard.0.try_wait().map_err(|e| e.to_string())? {
            if !status.success() {
                let mut err = String::new();
                if let Some(mut s) = guard.0.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut s, &mut err);
                }
                return Err(format!("chromium exited with {status}: {err}"));
            }
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err("chromium did not finish within 90 s".into());
        }
        // Polling a child's exit status; the wait is bounded by the deadline above.
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Decodes an RGB(A) PNG and returns (width, height, luma variance, share of non-white pixels).
fn png_stats(path: &Path) -> (u32, u32, f64, f64) {
    let decoder = png::Decoder::new(std::fs::File::open(path).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let bytes = &buf[..info.buffer_size()];
    let channels = info.color_type.samples();
    assert!(
        channels >= 3,
        "unexpected colour type {:?}",
        info.color_type
    );
    let luma: Vec<f64> = bytes
        .chunks_exact(channels)
        .map(|p| 0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2]))
        .collect();
    let mean = luma.iter().sum::<f64>() / luma.len() as f64;
    let var = luma.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / luma.len() as f64;
    let ink = luma.iter().filter(|l| **l < 240.0).count() as f64 / luma.len() as f64;
    (info.width, info.height, var, ink)
}

fn check_renders(name: &str, c: &Comparison) {
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("report.html");
    std::fs::write(&html, render(c, Format::Html).unwrap()).unwrap();
    let png = dir.path().join("shot.png");
    let profile = dir.path().join("profile");
    screenshot(&html, &png, &profile).unwrap();
    assert!(png.exists(), "no screenshot written");
    let (w, h, var, ink) = png_stats(&png);
    assert_eq!((w, h), (1200, 2000));
    assert!(
        var > 100.0,
        "screenshot looks blank (luma variance {var:.1})"
    );
    assert!(
        ink > 0.02,
        "too little drawn on the page ({:.2}% non-white)",
        ink * 100.0
    );
    if let Some(keep) = std::env::var_os("WASMBENCH_KEEP_SCREENSHOT") {
        let keep = PathBuf::from(keep);
        std::fs::create_dir_all(&keep).unwrap();
        std::fs::copy(&png, keep.join(format!("{name}.png"))).unwrap();
        std::fs::copy(&html, keep.join(format!("{name}.html"))).unwrap();
    }
}

#[test]
fn html_report_renders_in_headless_chromium() {
    if !Path::new(CHROMIUM).exists() {
        println!("skipped: {CHROMIUM} not found (apt-get install chromium to run this test)");
        return;
    }
    check_renders("two-variants", &support::two_variants());
    check_renders("many-variants", &support::many_variants());
}
