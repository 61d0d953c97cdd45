//! `cargo xtask eval faces [--json] [--dump DIR] [--models DIR]`: the face
//! pipeline (CenterFace → five-point alignment → faceres-deep → cosine) on the
//! real photographs that registry packages ship (see `media.rs`).
//!
//! What it measures, and how much that is worth:
//! - detection on the photos (faces found per photo) and yes/no rates on the
//!   100 face and 100 non-face 25×25 LFW crops of scikit-image (upscaled: far
//!   smaller than any capture we take, so a floor, not a rate to quote);
//! - impostor similarities: pairs of different people — faces in the same
//!   group photo, and faces of different photos labelled by hand below;
//! - genuine similarities: the same person in different photos where the
//!   demo photos show one (labelled by hand), plus the same photo altered
//!   (mirrored, rescaled, rotated, re-exposed, re-compressed). Altered copies
//!   are weak evidence: the same pixels, the same pose, the same light;
//! - the threshold: midway between the highest impostor and the lowest genuine
//!   similarity when they separate, otherwise where FMR and FNMR cross; FMR and
//!   FNMR at that threshold and at the configured default.
//! - the three input preprocessings of faceres-deep side by side.
//!   Not evaluated: a real selfie-vs-document set, ageing, print/screen
//!   recaptures, demographic spread. These few people are a sanity check.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use image::{DynamicImage, RgbImage};
use kyc_verify::face::align::{Similarity, warp};
use kyc_verify::face::detect::DetectedFace;
use kyc_verify::face::embed::{Descriptor, Preprocess};
use kyc_verify::face::{FaceMatchConfig, FacePipeline, default_model_dir};
use serde_json::{Value, json};

use crate::media;

/// Photos used for identity pairs: (label, package file).
const PHOTOS: &[(&str, &str)] = &[
    ("astronaut", "skimage/data/astronaut.png"),
    ("cameraman", "skimage/data/camera.png"),
    ("sample1", "package/demo/sample1.jpg"),
    ("sample2", "package/demo/sample2.jpg"),
    ("sample3", "package/demo/sample3.jpg"),
    ("sample4", "package/demo/sample4.jpg"),
    ("sample5", "package/demo/sample5.jpg"),
    ("sample6", "package/demo/sample6.jpg"),
];

/// Who is who, by hand from the aligned crops (`--dump`): (photo, index of
/// the face counted left to right, person). Faces of one photo are always
/// different people; a person named in two photos gives genuine pairs.
/// Faces not listed are used only for same-photo impostor pairs.
const IDENTITIES: &[(&str, usize, &str)] =
    &[("astronaut", 0, "collins"), ("cameraman", 0, "cameraman")];

struct Options {
    json: bool,
    dump: Option<PathBuf>,
    models: PathBuf,
}

fn parse(args: &[String]) -> Result<Options> {
    let mut options = Options {
        json: false,
        dump: None,
        models: default_model_dir(),
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--json" => options.json = true,
            "--dump" => {
                options.dump = Some(PathBuf::from(
                    it.next().context("--dump needs a directory")?,
                ))
            }
            "--models" => {
                options.models = PathBuf::from(it.next().context("--models needs a directory")?)
            }
            other => bail!(
                "eval faces: unknown argument {other:?} (takes --json, --dump DIR, --models DIR)"
            ),
        }
    }
    Ok(options)
}

/// A face found in a photo or an altered copy, with one descriptor per preprocessing.
struct Sample {
    photo: String,
    index: usize,
    person: Option<&'static str>,
    /// The alteration, `None` for the original photo.
    alteration: Option<&'static str>,
    descriptors: Vec<Descriptor>,
}

const VARIANTS: [(&str, Preprocess); 3] = [
    ("bgr_minus_vggface_mean", Preprocess::VGGFACE),
    ("bgr_minus_imagenet_mean", Preprocess::IMAGENET_CAFFE),
    ("rgb_0_255", Preprocess::Rgb),
];

pub fn run(args: &[String]) -> Result<()> {
    let options = parse(args)?;
    let cache = media::default_cache();
    let skimage = media::ensure(&media::SCIKIT_IMAGE, &cache.join("scikit-image"))?;
    let faceapi = media::ensure(&media::FACE_API, &cache.join("face-api"))?;
    let locate = |file: &str| {
        if file.starts_with("skimage/") {
            skimage.join(file)
        } else {
            faceapi.join(file)
        }
    };

    if !options.models.join("centerface.onnx").is_file() {
        bail!(
            "no model files in {} — run `cargo xtask models` first",
            options.models.display()
        );
    }
    let config = FaceMatchConfig::default();
    let pipelines = VARIANTS
        .iter()
        .map(|(_, p)| {
            FacePipeline::load(
                &options.models,
                FaceMatchConfig {
                    preprocess: *p,
                    ..config
                },
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let main = &pipelines[0];

    // ---------------------------------------------------------- photos
    let mut samples = Vec::new();
    let mut photo_reports = Vec::new();
    let mut crops = Vec::new();
    for (label, file) in PHOTOS {
        let image = load_rgb(&locate(file))?;
        let mut faces = main.detect(&image)?;
        faces.sort_by(|a, b| a.bbox.left.total_cmp(&b.bbox.left));
        photo_reports.push(json!({
            "photo": label,
            "size": [image.width(), image.height()],
            "faces": faces.len(),
            "scores": faces.iter().map(|f| round(f.score)).collect::<Vec<_>>(),
        }));
        if let Some(dir) = &options.dump {
            std::fs::create_dir_all(dir)?;
            overview(&image, &faces).save(dir.join(format!("{label}-boxes.png")))?;
        }
        for (index, face) in faces.iter().enumerate() {
            let person = IDENTITIES
                .iter()
                .find(|(p, i, _)| p == label && *i == index)
                .map(|(_, _, who)| *who);
            if let Some(dir) = &options.dump {
                std::fs::create_dir_all(dir)?;
                let crop = main.align(&image, face)?;
                crop.save(dir.join(format!("{label}-{index}.png")))?;
                crops.push(crop);
            }
            let descriptors = describe_all(&pipelines, &image, face)?;
            samples.push(Sample {
                photo: (*label).to_string(),
                index,
                person,
                alteration: None,
                descriptors,
            });
        }
    }

    if let Some(dir) = &options.dump {
        // All crops on one sheet, in photo order, six to a row, for labelling.
        let side = kyc_verify::face::embed::INPUT_SIZE;
        let rows = crops.len().div_ceil(6) as u32;
        let mut sheet = RgbImage::new(6 * side, rows.max(1) * side);
        for (i, crop) in crops.iter().enumerate() {
            let (x, y) = ((i % 6) as u32 * side, (i / 6) as u32 * side);
            image::imageops::overlay(&mut sheet, crop, i64::from(x), i64::from(y));
        }
        sheet.save(dir.join("sheet.png"))?;
    }

    // ---------------------------------------------------------- altered copies
    let mut altered_found = 0usize;
    let mut altered_total = 0usize;
    for (label, file) in PHOTOS
        .iter()
        .filter(|(l, _)| IDENTITIES.iter().any(|(p, _, _)| p == l))
    {
        let image = load_rgb(&locate(file))?;
        for (alteration, altered) in alterations(&image)? {
            altered_total += 1;
            let faces = main.detect(&altered)?;
            // Only the single-face photos are altered, so the best face is the one.
            let Some(face) = faces.first() else { continue };
            altered_found += 1;
            let person = IDENTITIES
                .iter()
                .find(|(p, _, _)| p == label)
                .map(|(_, _, who)| *who);
            let descriptors = describe_all(&pipelines, &altered, face)?;
            samples.push(Sample {
                photo: (*label).to_string(),
                index: 0,
                person,
                alteration: Some(alteration),
                descriptors,
            });
        }
    }

    // ---------------------------------------------------------- pairs
    let mut variant_reports = Vec::new();
    let mut chosen = None;
    for (v, (name, _)) in VARIANTS.iter().enumerate() {
        let pairs = pairs(&samples, v);
        let report = summarise(&pairs, config.threshold);
        if v == 0 {
            chosen = Some(report.clone());
        }
        variant_reports.push(json!({ "preprocess": name, "pairs": report }));
    }

    // ---------------------------------------------------------- LFW crops
    let lfw = lfw_detection(main, &skimage.join("skimage/data/lfw_subset.npy"))?;

    // ---------------------------------------------------------- latency
    let latency = latency_1080p(main, &load_rgb(&locate("package/demo/sample1.jpg"))?)?;

    let report = json!({
        "models": options.models.display().to_string(),
        "pipeline": {
            "detector": "centerface.onnx, long side 640, score ≥ 0.5, NMS IoU 0.3",
            "alignment": "4-dof least-squares similarity onto the 5-point template, 224×224, bilinear",
            "descriptor": "faceres-deep.onnx, 1024-d, L2-normalised, cosine",
            "default_threshold": config.threshold,
        },
        "photos": photo_reports,
        "faces_described": samples.iter().filter(|s| s.alteration.is_none()).count(),
        "altered_copies": { "made": altered_total, "face_found": altered_found },
        "lfw_subset": lfw,
        "match": chosen,
        "preprocessing_comparison": variant_reports,
        "latency_ms_1920x1080": latency,
        "not_evaluated": [
            "real selfie-vs-document-portrait pairs (none ship in a registry package we found)",
            "genuine pairs across different photos: no person is labelled in two of these photos, so the genuine side is altered copies only",
            "detection has no ground-truth file: the --dump overviews were checked by eye (2026-11-24: every visible face found, nothing else boxed, 24 faces in 8 photos)",
            "ageing, glasses, masks, print or screen recaptures, demographic spread",
        ],
    });
    if options.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_summary(&report);
    }
    Ok(())
}

fn describe_all(
    pipelines: &[FacePipeline],
    image: &RgbImage,
    face: &DetectedFace,
) -> Result<Vec<Descriptor>> {
    let crop = pipelines[0].align(image, face)?;
    pipelines
        .iter()
        .map(|p| p.embedder().describe(&crop).map_err(Into::into))
        .collect()
}

/// The photo at 640 px on the long side with the detected boxes drawn in
/// green, for checking misses by eye.
fn overview(image: &RgbImage, faces: &[DetectedFace]) -> RgbImage {
    let scale = 640.0 / image.width().max(image.height()) as f32;
    let (w, h) = (
        (image.width() as f32 * scale) as u32,
        (image.height() as f32 * scale) as u32,
    );
    let mut out = image::imageops::resize(
        image,
        w.max(1),
        h.max(1),
        image::imageops::FilterType::Triangle,
    );
    let green = image::Rgb([0, 255, 0]);
    for f in faces {
        let clamp_x = |v: f32| ((v * scale) as u32).min(out.width().saturating_sub(1));
        let clamp_y = |v: f32| ((v * scale) as u32).min(out.height().saturating_sub(1));
        let (l, r, t, b) = (
            clamp_x(f.bbox.left),
            clamp_x(f.bbox.right),
            clamp_y(f.bbox.top),
            clamp_y(f.bbox.bottom),
        );
        for x in l..=r {
            out.put_pixel(x, t, green);
            out.put_pixel(x, b, green);
        }
        for y in t..=b {
            out.put_pixel(l, y, green);
            out.put_pixel(r, y, green);
        }
    }
    out
}

fn load_rgb(path: &Path) -> Result<RgbImage> {
    Ok(image::open(path)
        .with_context(|| format!("decoding {}", path.display()))?
        .to_rgb8())
}

/// Altered copies of one photo: the genuine pairs of last resort.
fn alterations(image: &RgbImage) -> Result<Vec<(&'static str, RgbImage)>> {
    let (w, h) = image.dimensions();
    let mut out = vec![("mirrored", image::imageops::flip_horizontal(image))];
    out.push((
        "half_size",
        image::imageops::resize(image, w / 2, h / 2, image::imageops::FilterType::Triangle),
    ));
    let (c, s) = (0.2f32.cos(), 0.2f32.sin());
    let (cx, cy) = (w as f32 / 2.0, h as f32 / 2.0);
    // Rotation by 0.2 rad about the centre (the warp maps output to source).
    let rotate = Similarity {
        a: c,
        b: s,
        tx: cx - (c * cx - s * cy),
        ty: cy - (s * cx + c * cy),
    };
    out.push(("rotated_11deg", warp(image, &rotate, w, h)));
    let mut dark = image.clone();
    for p in dark.pixels_mut() {
        p.0 = p.0.map(|v| ((f32::from(v) * 0.6) + 10.0) as u8);
    }
    out.push(("darker", dark));
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 30).encode_image(image)?;
    out.push(("jpeg_q30", image::load_from_memory(&jpeg)?.to_rgb8()));
    let crop = image::imageops::crop_imm(image, w / 8, h / 8, w * 3 / 4, h * 3 / 4).to_image();
    out.push(("cropped", crop));
    Ok(out)
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// Same person, different photos.
    GenuinePhotos,
    /// Same photo, altered.
    GenuineAltered,
    Impostor,
}

struct Pair {
    kind: Kind,
    similarity: f32,
    a: String,
    b: String,
}

fn pairs(samples: &[Sample], variant: usize) -> Vec<Pair> {
    let mut out = Vec::new();
    let name = |s: &Sample| {
        format!(
            "{}#{}{}",
            s.photo,
            s.index,
            s.alteration.map(|a| format!("/{a}")).unwrap_or_default()
        )
    };
    for (i, a) in samples.iter().enumerate() {
        for b in &samples[i + 1..] {
            let same_photo = a.photo == b.photo;
            let kind = match (a.person, b.person) {
                (Some(p), Some(q)) if p == q => {
                    if same_photo {
                        Kind::GenuineAltered
                    } else {
                        Kind::GenuinePhotos
                    }
                }
                (Some(_), Some(_)) => Kind::Impostor,
                // Unlabelled faces: different people only within one photo.
                _ if same_photo
                    && a.index != b.index
                    && a.alteration.is_none()
                    && b.alteration.is_none() =>
                {
                    Kind::Impostor
                }
                _ => continue,
            };
            // Altered copies pair with their original only, not with impostors
            // (that would count one impostor comparison many times).
            if kind == Kind::Impostor && (a.alteration.is_some() || b.alteration.is_some()) {
                continue;
            }
            if kind == Kind::GenuineAltered && a.alteration.is_some() && b.alteration.is_some() {
                continue;
            }
            let similarity = a.descriptors[variant].cosine(&b.descriptors[variant]);
            out.push(Pair {
                kind,
                similarity,
                a: name(a),
                b: name(b),
            });
        }
    }
    out
}

fn stats(values: &[f32]) -> Value {
    if values.is_empty() {
        return json!({ "count": 0 });
    }
    let mut v = values.to_vec();
    v.sort_by(f32::total_cmp);
    let mean = v.iter().sum::<f32>() / v.len() as f32;
    json!({
        "count": v.len(),
        "min": round(v[0]),
        "mean": round(mean),
        "median": round(v[v.len() / 2]),
        "max": round(v[v.len() - 1]),
    })
}

/// FMR and FNMR at `threshold` (a pair matches at similarity ≥ threshold).
fn rates(genuine: &[f32], impostor: &[f32], threshold: f32) -> (f32, f32) {
    let frac = |n: usize, d: usize| if d == 0 { 0.0 } else { n as f32 / d as f32 };
    let fmr = frac(
        impostor.iter().filter(|s| **s >= threshold).count(),
        impostor.len(),
    );
    let fnmr = frac(
        genuine.iter().filter(|s| **s < threshold).count(),
        genuine.len(),
    );
    (fmr, fnmr)
}

/// Midway in the gap when the sets separate, else the equal-error point.
fn choose_threshold(genuine: &[f32], impostor: &[f32]) -> (f32, &'static str) {
    let lowest_genuine = genuine.iter().copied().fold(f32::INFINITY, f32::min);
    let highest_impostor = impostor.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if genuine.is_empty() || impostor.is_empty() {
        return (f32::NAN, "not enough pairs");
    }
    if lowest_genuine > highest_impostor {
        return (
            (lowest_genuine + highest_impostor) / 2.0,
            "midway between highest impostor and lowest genuine",
        );
    }
    let mut best = (f32::INFINITY, 0.0);
    for step in 0..=2000 {
        let t = -1.0 + step as f32 / 1000.0;
        let (fmr, fnmr) = rates(genuine, impostor, t);
        if (fmr - fnmr).abs() < best.0 {
            best = ((fmr - fnmr).abs(), t);
        }
    }
    (best.1, "equal error rate point (the sets overlap)")
}

fn summarise(pairs: &[Pair], default_threshold: f32) -> Value {
    let of = |k: Kind| {
        pairs
            .iter()
            .filter(|p| p.kind == k)
            .map(|p| p.similarity)
            .collect::<Vec<_>>()
    };
    let (photos, altered, impostor) = (
        of(Kind::GenuinePhotos),
        of(Kind::GenuineAltered),
        of(Kind::Impostor),
    );
    let genuine: Vec<f32> = photos.iter().chain(&altered).copied().collect();
    let (threshold, how) = choose_threshold(&genuine, &impostor);
    let (fmr, fnmr) = rates(&genuine, &impostor, threshold);
    let (fmr_d, fnmr_d) = rates(&genuine, &impostor, default_threshold);
    let (_, fnmr_p) = rates(&photos, &impostor, default_threshold);
    let top_impostors = {
        let mut v: Vec<&Pair> = pairs.iter().filter(|p| p.kind == Kind::Impostor).collect();
        v.sort_by(|a, b| b.similarity.total_cmp(&a.similarity));
        v.iter()
            .take(3)
            .map(|p| json!([p.a, p.b, round(p.similarity)]))
            .collect::<Vec<_>>()
    };
    let low_genuine = {
        let mut v: Vec<&Pair> = pairs.iter().filter(|p| p.kind != Kind::Impostor).collect();
        v.sort_by(|a, b| a.similarity.total_cmp(&b.similarity));
        v.iter()
            .take(3)
            .map(|p| json!([p.a, p.b, round(p.similarity)]))
            .collect::<Vec<_>>()
    };
    json!({
        "genuine_different_photos": stats(&photos),
        "genuine_altered_copies": stats(&altered),
        "impostor": stats(&impostor),
        "chosen_threshold": round(threshold),
        "chosen_how": how,
        "at_chosen": { "fmr": round(fmr), "fnmr": round(fnmr) },
        "at_default": { "threshold": round(default_threshold), "fmr": round(fmr_d), "fnmr": round(fnmr_d),
                        "fnmr_different_photos_only": if photos.is_empty() { Value::Null } else { json!(round(fnmr_p)) } },
        "note": "the chosen threshold here rests on altered copies of one photo for its genuine side, \
                 which flatter the model; the default (see FaceMatchConfig::DEFAULT_THRESHOLD) also \
                 weighs MODELS.md's genuine pairs across different photos (lowest 0.759)",
        "highest_impostors": top_impostors,
        "lowest_genuines": low_genuine,
    })
}

/// Each 25×25 crop upscaled 4× (bilinear) onto a 200×200 canvas of its own
/// mean grey, so the detector sees a face with some surround.
fn lfw_detection(pipeline: &FacePipeline, path: &Path) -> Result<Value> {
    let bytes = std::fs::read(path)?;
    let (values, [n, h, w]) = media::parse_npy_f64_3d(&bytes)?;
    if n != 200 || h != 25 || w != 25 {
        bail!("lfw_subset.npy has shape {n}×{h}×{w}, expected 200×25×25");
    }
    let max = values.iter().copied().fold(0.0f64, f64::max);
    let scale = if max <= 1.0 { 255.0 } else { 1.0 };
    let mut found = [0usize; 2];
    let mut peaks: [Vec<f32>; 2] = [Vec::new(), Vec::new()];
    for k in 0..n {
        let crop = &values[k * h * w..(k + 1) * h * w];
        let mean = crop.iter().sum::<f64>() / crop.len() as f64;
        let grey = |v: f64| (v * scale).round().clamp(0.0, 255.0) as u8;
        let small = RgbImage::from_fn(w as u32, h as u32, |x, y| {
            let g = grey(crop[y as usize * w + x as usize]);
            image::Rgb([g, g, g])
        });
        let big = image::imageops::resize(&small, 100, 100, image::imageops::FilterType::Triangle);
        let fill = grey(mean);
        let mut canvas = RgbImage::from_pixel(200, 200, image::Rgb([fill, fill, fill]));
        image::imageops::overlay(&mut canvas, &big, 50, 50);
        let class = usize::from(k >= 100);
        let faces = pipeline.detect(&canvas)?;
        if !faces.is_empty() {
            found[class] += 1;
        }
        peaks[class].push(faces.first().map(|f| f.score).unwrap_or(0.0));
    }
    Ok(json!({
        "how": "25×25 grey crops upscaled to 100×100 on a 200×200 canvas of their mean grey; the detector scales that to 640",
        "faces": { "count": 100, "detected": found[0], "rate": round(found[0] as f32 / 100.0), "best_score": stats(&peaks[0]) },
        "non_faces": { "count": 100, "detected": found[1], "rate": round(found[1] as f32 / 100.0), "best_score": stats(&peaks[1]) },
    }))
}

/// Per-stage medians over 5 runs on a 1920×1080 frame made from a real photo;
/// the first detection (which builds the plan for the shape) is reported apart.
fn latency_1080p(pipeline: &FacePipeline, photo: &RgbImage) -> Result<Value> {
    let frame = image::imageops::resize(photo, 1920, 1080, image::imageops::FilterType::Triangle);
    let mut png = Vec::new();
    DynamicImage::ImageRgb8(frame).write_to(
        &mut std::io::Cursor::new(&mut png),
        image::ImageFormat::Jpeg,
    )?;
    let ms = |t: Instant| t.elapsed().as_secs_f64() * 1000.0;
    let t = Instant::now();
    let first = pipeline.detect(&image::load_from_memory(&png)?.to_rgb8())?;
    let first_ms = ms(t);
    let Some(face) = first.first().cloned() else {
        bail!("no face in the 1920×1080 latency frame")
    };
    let (mut decode, mut detect, mut align, mut describe) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..5 {
        let t = Instant::now();
        let img = image::load_from_memory(&png)?.to_rgb8();
        decode.push(ms(t));
        let t = Instant::now();
        pipeline.detect(&img)?;
        detect.push(ms(t));
        let t = Instant::now();
        let crop = pipeline.align(&img, &face)?;
        align.push(ms(t));
        let t = Instant::now();
        pipeline.embedder().describe(&crop)?;
        describe.push(ms(t));
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        (v[v.len() / 2] * 10.0).round() / 10.0
    };
    Ok(json!({
        "jpeg_decode": median(decode),
        "detect_first_call_with_plan_build": (first_ms * 10.0).round() / 10.0,
        "detect": median(detect),
        "align": median(align),
        "describe": median(describe),
        "threads": 1,
    }))
}

fn round(v: f32) -> f64 {
    (f64::from(v) * 1000.0).round() / 1000.0
}

fn print_summary(r: &Value) {
    let m = &r["match"];
    let l = &r["lfw_subset"];
    let t = &r["latency_ms_1920x1080"];
    println!(
        "face pipeline on registry-shipped photos ({})",
        r["pipeline"]["descriptor"]
    );
    for p in r["photos"].as_array().into_iter().flatten() {
        println!(
            "  {:<10} {} face(s), scores {}",
            p["photo"].as_str().unwrap_or("?"),
            p["faces"],
            p["scores"]
        );
    }
    println!(
        "LFW 25×25 crops: faces detected {}/100, non-faces detected {}/100",
        l["faces"]["detected"], l["non_faces"]["detected"]
    );
    println!("similarity (faceres-deep, BGR − VGGFace mean):");
    println!("  impostor (different people)      {}", m["impostor"]);
    println!(
        "  genuine, different photos        {}",
        m["genuine_different_photos"]
    );
    println!(
        "  genuine, altered copies (weak)   {}",
        m["genuine_altered_copies"]
    );
    println!(
        "  threshold from this data {} ({})",
        m["chosen_threshold"],
        m["chosen_how"].as_str().unwrap_or("")
    );
    println!(
        "  at the default {}: FMR {} FNMR {}",
        m["at_default"]["threshold"], m["at_default"]["fmr"], m["at_default"]["fnmr"]
    );
    for v in r["preprocessing_comparison"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let p = &v["pairs"];
        println!(
            "  {:<24} impostor max {}  altered-copy genuine min {}",
            v["preprocess"].as_str().unwrap_or("?"),
            p["impostor"]["max"],
            p["genuine_altered_copies"]["min"]
        );
    }
    println!(
        "latency 1920×1080, ms: decode {} detect {} (first call {}) align {} describe {}",
        t["jpeg_decode"],
        t["detect"],
        t["detect_first_call_with_plan_build"],
        t["align"],
        t["describe"]
    );
    println!("not evaluated: {}", r["not_evaluated"]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_sits_in_the_gap_or_at_the_crossing() {
        let (t, _) = choose_threshold(&[0.8, 0.9], &[0.2, 0.4]);
        assert!((t - 0.6).abs() < 1e-6);
        let (t, how) = choose_threshold(&[0.5, 0.9], &[0.2, 0.6]);
        assert!(how.starts_with("equal"));
        let (fmr, fnmr) = rates(&[0.5, 0.9], &[0.2, 0.6], t);
        assert_eq!(fmr, fnmr);
    }

    #[test]
    fn unknown_arguments_are_refused() {
        assert!(parse(&["--bogus".into()]).is_err());
        assert!(parse(&["--json".into()]).unwrap().json);
    }
}
