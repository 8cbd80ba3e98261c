//! Reproducible OCI images written without a container daemon.
//!
//! One image = one gzip layer holding a few files, an image config and a manifest. Everything
//! that could vary between builds is fixed: file mtimes (0), owners (0:0), entry order (sorted),
//! the gzip header (no name, mtime 0) and JSON key order (sorted), so building the same inputs
//! twice gives the same digests.
//!
//! Outputs:
//! - an OCI image layout directory ([`write_layout`]: `oci-layout`, `index.json`,
//!   `blobs/sha256/…`), which can hold several images;
//! - a single-image archive ([`write_archive`]): an OCI layout in a tar that also carries a
//!   `docker save` style `manifest.json`, accepted by `ctr images import`,
//!   `kind load image-archive` and `docker load`.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::{Compression, GzBuilder};
use oci_spec::image::{
    Arch, ConfigBuilder, Descriptor, DescriptorBuilder, HistoryBuilder, ImageConfigurationBuilder,
    ImageIndexBuilder, ImageManifestBuilder, MediaType, Os, PlatformBuilder, RootFsBuilder,
};
use sha2::{Digest as _, Sha256};

use crate::Error;
use crate::variant::ImageKind;

/// The fixed creation time written into every image (the Unix epoch): builds are reproducible.
pub const FIXED_CREATED: &str = "1970-01-01T00:00:00Z";
/// The non-root user the native and wasmbench images run as (the "nonroot" uid of distroless).
pub const NONROOT_UID: u32 = 65532;

/// The platform an image is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImagePlatform {
    /// `linux/amd64`.
    LinuxAmd64,
    /// `wasi/wasm`: accepted by crun's Wasm handlers and the runwasi shims.
    WasiWasm,
}

impl ImagePlatform {
    fn os_arch(self) -> (Os, Arch) {
        match self {
            ImagePlatform::LinuxAmd64 => (Os::Linux, Arch::Amd64),
            ImagePlatform::WasiWasm => (Os::Other("wasi".to_owned()), Arch::Wasm),
        }
    }
}

/// One file placed in the image's single layer.
#[derive(Debug, Clone)]
pub struct ImageFile {
    /// Absolute path inside the image, e.g. `/echo`.
    pub path: String,
    /// Where to read it from.
    pub source: PathBuf,
    /// Unix mode bits, e.g. `0o755`.
    pub mode: u32,
}

/// What to put in an image.
#[derive(Debug, Clone)]
pub struct ImageSpec {
    /// Full reference, e.g. `localhost/wasmbench/echo-native:0.1.0`.
    pub reference: String,
    /// Target platform.
    pub platform: ImagePlatform,
    /// The layer's files.
    pub files: Vec<ImageFile>,
    /// Entrypoint argv.
    pub entrypoint: Vec<String>,
    /// `KEY=value` environment.
    pub env: Vec<String>,
    /// `uid[:gid]`; `None` leaves it to the runtime (Wasm images have no users).
    pub user: Option<String>,
    /// TCP ports documented in the config.
    pub exposed_ports: Vec<u16>,
    /// Image labels.
    pub labels: BTreeMap<String, String>,
}

impl ImageSpec {
    /// The spec for one of wasmbench's images. `binary` is the static executable or the `.wasm`
    /// module; `reference` the full image name with tag.
    pub fn for_kind(kind: ImageKind, binary: &Path, reference: &str) -> ImageSpec {
        let mut labels = BTreeMap::new();
        labels.insert(
            "org.opencontainers.image.title".to_owned(),
            kind.repository().to_owned(),
        );
        labels.insert(
            "org.opencontainers.image.version".to_owned(),
            env!("CARGO_PKG_VERSION").to_owned(),
        );
        let nonroot = Some(format!("{NONROOT_UID}:{NONROOT_UID}"));
        let (platform, file, user, ports) = match kind {
            ImageKind::Native => (ImagePlatform::LinuxAmd64, "/echo", nonroot, vec![8080]),
            ImageKind::Wasmbench => (ImagePlatform::LinuxAmd64, "/wasmbench", nonroot, vec![]),
            ImageKind::K6 => (ImagePlatform::LinuxAmd64, "/k6", nonroot, vec![]),
            ImageKind::Wasm
            | ImageKind::WasmEdge
            | ImageKind::WasmEdgeAot
            | ImageKind::WasiHttp
            | ImageKind::WasiHttpP3
            | ImageKind::Spin => (ImagePlatform::WasiWasm, "/echo.wasm", None, vec![8080]),
        };
        ImageSpec {
            reference: reference.to_owned(),
            platform,
            files: vec![ImageFile {
                path: file.to_owned(),
                source: binary.to_owned(),
                mode: 0o755,
            }],
            entrypoint: vec![file.to_owned()],
            env: if matches!(kind, ImageKind::Wasmbench | ImageKind::K6) {
                Vec::new()
            } else {
                vec!["PORT=8080".to_owned(), "ECHO_HOST=0.0.0.0".to_owned()]
            },
            user,
            exposed_ports: ports,
            labels,
        }
    }
}

/// The digests of a written image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltImage {
    /// The image reference.
    pub reference: String,
    /// `sha256:…` of the manifest: the image's identity.
    pub manifest_digest: String,
    /// `sha256:…` of the config blob (Docker's "image id").
    pub config_digest: String,
    /// `sha256:…` of the compressed layer.
    pub layer_digest: String,
    /// `sha256:…` of the uncompressed layer tar.
    pub diff_id: String,
    /// Size of the manifest in bytes.
    pub manifest_size: u64,
}

/// In-memory blobs of one image: digest → bytes, plus the manifest descriptor.
struct Blobs {
    blobs: BTreeMap<String, Vec<u8>>,
    manifest: Descriptor,
    built: BuiltImage,
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn spec_err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Serialize {
        what: what.to_owned(),
        reason: e.to_string(),
    }
}

/// JSON with object keys sorted at every level, whatever map type the value used.
fn canonical_json(value: &impl serde::Serialize, what: &str) -> Result<Vec<u8>, Error> {
    fn sort(v: serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(m) => {
                let sorted: BTreeMap<String, serde_json::Value> =
                    m.into_iter().map(|(k, v)| (k, sort(v))).collect();
                serde_json::Value::Object(sorted.into_iter().collect())
            }
            serde_json::Value::Array(a) => {
                serde_json::Value::Array(a.into_iter().map(sort).collect())
            }
            other => other,
        }
    }
    let v = serde_json::to_value(value).map_err(|e| spec_err(what, e))?;
    serde_json::to_vec(&sort(v)).map_err(|e| spec_err(what, e))
}

/// Builds the layer tar: sorted entries, parent directories included, fixed metadata.
fn layer_tar(files: &[ImageFile]) -> Result<Vec<u8>, Error> {
    let mut entries: BTreeMap<String, Option<&ImageFile>> = BTreeMap::new();
    for f in files {
        let rel = f.path.trim_start_matches('/');
        if rel.is_empty() || rel.split('/').any(|c| c == ".." || c.is_empty()) {
            return Err(Error::InvalidPlan(format!(
                "image path `{}` must be an absolute file path without `..`",
                f.path
            )));
        }
        let mut dir = String::new();
        let comps: Vec<&str> = rel.split('/').collect();
        for c in &comps[..comps.len() - 1] {
            dir.push_str(c);
            dir.push('/');
            entries.entry(dir.clone()).or_insert(None);
        }
        entries.insert(rel.to_owned(), Some(f));
    }
    let mut builder = tar::Builder::new(Vec::new());
    for (path, file) in entries {
        let mut header = tar::Header::new_ustar();
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        match file {
            None => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                header.set_size(0);
                builder
                    .append_data(&mut header, &path, std::io::empty())
                    .map_err(|e| Error::io(&path, e))?;
            }
            Some(f) => {
                let data = fs::read(&f.source).map_err(|e| Error::io(&f.source, e))?;
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(f.mode);
                header.set_size(data.len() as u64);
                builder
                    .append_data(&mut header, &path, data.as_slice())
                    .map_err(|e| Error::io(&f.source, e))?;
            }
        }
    }
    builder.into_inner().map_err(|e| Error::io("layer.tar", e))
}

fn gzip(data: &[u8]) -> Result<Vec<u8>, Error> {
    // No file name and mtime 0 in the header: the compressed bytes depend on the input only.
    let mut enc = GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), Compression::new(6));
    enc.write_all(data)
        .map_err(|e| Error::io("layer.tar.gz", e))?;
    enc.finish().map_err(|e| Error::io("layer.tar.gz", e))
}

fn descriptor(media: MediaType, digest: &str, size: usize) -> Result<Descriptor, Error> {
    DescriptorBuilder::default()
        .media_type(media)
        .digest(
            digest
                .parse::<oci_spec::image::Digest>()
                .map_err(|e| spec_err("digest", e))?,
        )
        .size(size as u64)
        .build()
        .map_err(|e| spec_err("descriptor", e))
}

fn build_blobs(spec: &ImageSpec) -> Result<Blobs, Error> {
    let tar = layer_tar(&spec.files)?;
    let diff_id = sha256(&tar);
    let layer = gzip(&tar)?;
    let layer_digest = sha256(&layer);

    let (os, arch) = spec.platform.os_arch();
    let mut config = ConfigBuilder::default()
        .entrypoint(spec.entrypoint.clone())
        .env(spec.env.clone())
        .labels(spec.labels.clone().into_iter().collect::<HashMap<_, _>>());
    if let Some(user) = &spec.user {
        config = config.user(user.clone());
    }
    if !spec.exposed_ports.is_empty() {
        config = config.exposed_ports(
            spec.exposed_ports
                .iter()
                .map(|p| format!("{p}/tcp"))
                .collect::<Vec<_>>(),
        );
    }
    let config = config.build().map_err(|e| spec_err("image config", e))?;
    let image_config = ImageConfigurationBuilder::default()
        .created(FIXED_CREATED.to_owned())
        .architecture(arch.clone())
        .os(os.clone())
        .config(config)
        .rootfs(
            RootFsBuilder::default()
                .typ("layers".to_owned())
                .diff_ids(vec![diff_id.clone()])
                .build()
                .map_err(|e| spec_err("rootfs", e))?,
        )
        .history(vec![
            HistoryBuilder::default()
                .created(FIXED_CREATED.to_owned())
                .created_by("wasmbench image build".to_owned())
                .build()
                .map_err(|e| spec_err("history", e))?,
        ])
        .build()
        .map_err(|e| spec_err("image configuration", e))?;
    let config_bytes = canonical_json(&image_config, "image configuration")?;
    let config_digest = sha256(&config_bytes);

    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(descriptor(
            MediaType::ImageConfig,
            &config_digest,
            config_bytes.len(),
        )?)
        .layers(vec![descriptor(
            MediaType::ImageLayerGzip,
            &layer_digest,
            layer.len(),
        )?])
        .build()
        .map_err(|e| spec_err("manifest", e))?;
    let manifest_bytes = canonical_json(&manifest, "manifest")?;
    let manifest_digest = sha256(&manifest_bytes);

    let mut manifest_desc = descriptor(
        MediaType::ImageManifest,
        &manifest_digest,
        manifest_bytes.len(),
    )?;
    manifest_desc.set_platform(Some(
        PlatformBuilder::default()
            .os(os)
            .architecture(arch)
            .build()
            .map_err(|e| spec_err("platform", e))?,
    ));
    manifest_desc.set_annotations(Some(HashMap::from([
        // containerd's importer names the image after this annotation.
        (
            "io.containerd.image.name".to_owned(),
            spec.reference.clone(),
        ),
        (
            "org.opencontainers.image.ref.name".to_owned(),
            spec.reference.clone(),
        ),
    ])));

    let built = BuiltImage {
        reference: spec.reference.clone(),
        manifest_digest: manifest_digest.clone(),
        config_digest: config_digest.clone(),
        layer_digest: layer_digest.clone(),
        diff_id,
        manifest_size: manifest_bytes.len() as u64,
    };
    let mut blobs = BTreeMap::new();
    blobs.insert(layer_digest, layer);
    blobs.insert(config_digest, config_bytes);
    blobs.insert(manifest_digest, manifest_bytes);
    Ok(Blobs {
        blobs,
        manifest: manifest_desc,
        built,
    })
}

fn blob_path(digest: &str) -> String {
    format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"))
}

const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

fn index_json(manifests: Vec<Descriptor>) -> Result<Vec<u8>, Error> {
    let index = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(manifests)
        .build()
        .map_err(|e| spec_err("index", e))?;
    canonical_json(&index, "index")
}

/// Adds `spec` to the OCI image layout at `dir` (created if missing). An image with the same
/// reference already in `index.json` is replaced; other images are kept, sorted by reference.
pub fn write_layout(spec: &ImageSpec, dir: &Path) -> Result<BuiltImage, Error> {
    let blobs = build_blobs(spec)?;
    let blob_dir = dir.join("blobs/sha256");
    fs::create_dir_all(&blob_dir).map_err(|e| Error::io(&blob_dir, e))?;
    for (digest, bytes) in &blobs.blobs {
        let p = dir.join(blob_path(digest));
        fs::write(&p, bytes).map_err(|e| Error::io(&p, e))?;
    }
    let layout = dir.join("oci-layout");
    fs::write(&layout, OCI_LAYOUT).map_err(|e| Error::io(&layout, e))?;

    let index_path = dir.join("index.json");
    let mut manifests: Vec<Descriptor> = match fs::read(&index_path) {
        Ok(bytes) => {
            let index: oci_spec::image::ImageIndex =
                serde_json::from_slice(&bytes).map_err(|e| {
                    Error::InvalidPlan(format!(
                        "{} is not an OCI index: {e}; remove the directory or pick another --out",
                        index_path.display()
                    ))
                })?;
            index.manifests().clone()
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(Error::io(&index_path, e)),
    };
    let name_of = |d: &Descriptor| {
        d.annotations()
            .as_ref()
            .and_then(|a| a.get("io.containerd.image.name").cloned())
            .unwrap_or_default()
    };
    manifests.retain(|d| name_of(d) != spec.reference);
    manifests.push(blobs.manifest.clone());
    manifests.sort_by_key(name_of);
    let bytes = index_json(manifests)?;
    fs::write(&index_path, bytes).map_err(|e| Error::io(&index_path, e))?;
    Ok(blobs.built)
}

/// Writes `spec` as a single-image archive (OCI layout + `manifest.json`) to `path`.
pub fn write_archive(spec: &ImageSpec, path: &Path) -> Result<BuiltImage, Error> {
    let blobs = build_blobs(spec)?;
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for (digest, bytes) in &blobs.blobs {
        files.insert(blob_path(digest), bytes.clone());
    }
    files.insert("oci-layout".to_owned(), OCI_LAYOUT.to_vec());
    files.insert("index.json".to_owned(), index_json(vec![blobs.manifest])?);
    // `docker load` reads this file; containerd understands both forms.
    let docker_manifest = serde_json::json!([{
        "Config": blob_path(&blobs.built.config_digest),
        "RepoTags": [spec.reference],
        "Layers": [blob_path(&blobs.built.layer_digest)],
    }]);
    files.insert(
        "manifest.json".to_owned(),
        canonical_json(&docker_manifest, "manifest.json")?,
    );

    let mut builder = tar::Builder::new(Vec::new());
    let mut dirs_done = std::collections::BTreeSet::new();
    for (name, bytes) in &files {
        // Directory entries first so extractors that need them find them.
        let mut prefix = String::new();
        for c in name
            .split('/')
            .collect::<Vec<_>>()
            .split_last()
            .map(|x| x.1)
            .unwrap_or(&[])
        {
            prefix.push_str(c);
            prefix.push('/');
            if dirs_done.insert(prefix.clone()) {
                let mut h = tar::Header::new_ustar();
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_mtime(0);
                h.set_size(0);
                builder
                    .append_data(&mut h, &prefix, std::io::empty())
                    .map_err(|e| Error::io(path, e))?;
            }
        }
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_size(bytes.len() as u64);
        builder
            .append_data(&mut h, name, bytes.as_slice())
            .map_err(|e| Error::io(path, e))?;
    }
    let data = builder.into_inner().map_err(|e| Error::io(path, e))?;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    fs::write(path, data).map_err(|e| Error::io(path, e))?;
    Ok(blobs.built)
}

/// Image references for the run.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Images {
    /// Registry/repository prefix, e.g. `localhost/wasmbench`.
    pub prefix: String,
    /// Tag for every image; versioned, never `latest` (which forces a pull).
    pub tag: String,
    /// The Spin application image (wasmbench does not build one).
    pub spin: Option<String>,
}

impl Default for Images {
    fn default() -> Self {
        Images {
            prefix: "localhost/wasmbench".into(),
            tag: env!("CARGO_PKG_VERSION").into(),
            spin: None,
        }
    }
}

impl Images {
    /// The full reference of `kind`'s image.
    pub fn reference(&self, kind: ImageKind) -> String {
        match (kind, &self.spin) {
            (ImageKind::Spin, Some(s)) => s.clone(),
            _ => reference(&self.prefix, kind, &self.tag),
        }
    }
}

/// The default reference for one of wasmbench's images: `<prefix>/<repository>:<tag>`.
pub fn reference(prefix: &str, kind: ImageKind, tag: &str) -> String {
    format!(
        "{}/{}:{}",
        prefix.trim_end_matches('/'),
        kind.repository(),
        tag
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_binary(dir: &Path, name: &str, content: &[u8]) -> PathBuf {
        let p = dir.join(name);
        fs::write(&p, content).unwrap();
        p
    }

    #[test]
    fn wasm_images_run_a_dot_wasm_entrypoint() {
        // crun's `compat-smart` handler runs the entrypoint as Wasm only when its name ends in
        // `.wasm`; under any other name it would try to exec the module as a Linux program.
        for kind in [ImageKind::Wasm, ImageKind::WasmEdge, ImageKind::WasmEdgeAot] {
            let spec = ImageSpec::for_kind(kind, Path::new("/x.wasm"), "a/b:c");
            assert_eq!(spec.platform, ImagePlatform::WasiWasm, "{kind:?}");
            assert_eq!(spec.entrypoint, vec!["/echo.wasm".to_owned()], "{kind:?}");
            assert_eq!(spec.user, None, "{kind:?}");
        }
    }

    #[test]
    fn archive_is_reproducible_and_content_addressed() {
        let tmp = tempfile::tempdir().unwrap();
        let bin = fake_binary(tmp.path(), "echo", b"\x7fELF pretend binary");
        let spec = ImageSpec::for_kind(
            ImageKind::Native,
            &bin,
            "localhost/wasmbench/echo-native:0.1.0",
        );
        let a = write_archive(&spec, &tmp.path().join("a.tar")).unwrap();
        // Touch the source so its mtime differs: the digests must not change.
        let bin2 = fake_binary(tmp.path(), "echo2", b"\x7fELF pretend binary");
        let spec2 = ImageSpec::for_kind(
            ImageKind::Native,
            &bin2,
            "localhost/wasmbench/echo-native:0.1.0",
        );
        let b = write_archive(&spec2, &tmp.path().join("b.tar")).unwrap();
        assert_eq!(a, b);
        assert_eq!(
            fs::read(tmp.path().join("a.tar")).unwrap(),
            fs::read(tmp.path().join("b.tar")).unwrap()
        );
        // Different content, different digests.
        let bin3 = fake_binary(tmp.path(), "echo3", b"\x7fELF other binary");
        let c = write_archive(
            &ImageSpec::for_kind(
                ImageKind::Native,
                &bin3,
                "localhost/wasmbench/echo-native:0.1.0",
            ),
            &tmp.path().join("c.tar"),
        )
        .unwrap();
        assert_ne!(a.manifest_digest, c.manifest_digest);
        assert_ne!(a.diff_id, c.diff_id);
    }

    #[test]
    fn layout_blobs_match_their_digests_and_config_is_right() {
        let tmp = tempfile::tempdir().unwrap();
        let wasm = fake_binary(tmp.path(), "echo.wasm", b"\0asm\x01\0\0\0");
        let native = fake_binary(tmp.path(), "echo", b"\x7fELF");
        let layout = tmp.path().join("layout");
        let w = write_layout(
            &ImageSpec::for_kind(ImageKind::Wasm, &wasm, "localhost/wasmbench/echo-wasm:1"),
            &layout,
        )
        .unwrap();
        let n = write_layout(
            &ImageSpec::for_kind(
                ImageKind::Native,
                &native,
                "localhost/wasmbench/echo-native:1",
            ),
            &layout,
        )
        .unwrap();
        // Every blob's name is its sha256.
        for entry in fs::read_dir(layout.join("blobs/sha256")).unwrap() {
            let entry = entry.unwrap();
            let bytes = fs::read(entry.path()).unwrap();
            assert_eq!(
                sha256(&bytes),
                format!("sha256:{}", entry.file_name().to_string_lossy())
            );
        }
        let index: serde_json::Value =
            serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
        let manifests = index["manifests"].as_array().unwrap();
        assert_eq!(manifests.len(), 2);
        let wasm_desc = manifests
            .iter()
            .find(|m| m["digest"] == w.manifest_digest.as_str())
            .unwrap();
        assert_eq!(wasm_desc["platform"]["os"], "wasi");
        assert_eq!(wasm_desc["platform"]["architecture"], "wasm");

        let config: serde_json::Value =
            serde_json::from_slice(&fs::read(layout.join(blob_path(&n.config_digest))).unwrap())
                .unwrap();
        assert_eq!(config["config"]["Entrypoint"][0], "/echo");
        assert_eq!(config["config"]["User"], "65532:65532");
        assert_eq!(config["rootfs"]["diff_ids"][0], n.diff_id.as_str());
        assert_eq!(config["created"], FIXED_CREATED);

        // The layer holds exactly /echo, root-owned, mtime 0, executable.
        let layer = fs::read(layout.join(blob_path(&n.layer_digest))).unwrap();
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(layer.as_slice()));
        let entries: Vec<(String, u32, u64, u64)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    h.mode().unwrap(),
                    h.mtime().unwrap(),
                    h.uid().unwrap(),
                )
            })
            .collect();
        assert_eq!(entries, vec![("echo".to_owned(), 0o755, 0, 0)]);

        // Rewriting one image replaces its entry instead of adding another.
        write_layout(
            &ImageSpec::for_kind(ImageKind::Wasm, &wasm, "localhost/wasmbench/echo-wasm:1"),
            &layout,
        )
        .unwrap();
        let index: serde_json::Value =
            serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
        assert_eq!(index["manifests"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn rejects_relative_escape() {
        let tmp = tempfile::tempdir().unwrap();
        let bin = fake_binary(tmp.path(), "x", b"x");
        let mut spec = ImageSpec::for_kind(ImageKind::Native, &bin, "a/b:c");
        spec.files[0].path = "/../etc/passwd".to_owned();
        assert!(write_archive(&spec, &tmp.path().join("x.tar")).is_err());
    }
}
