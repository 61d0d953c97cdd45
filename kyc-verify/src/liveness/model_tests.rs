//! Liveness on the real models, with real photos and the spoofs and
//! movements [`super::spoof`] makes from them. CI skips these (no model
//! files); when a file is missing they fail and say which command makes it.

use std::path::{Path, PathBuf};
use std::time::Instant;

use image::RgbImage;

use super::passive::{self, SpoofModels};
use super::spoof;
use super::*;
use crate::face::default_model_dir;

fn pipeline() -> LivenessPipeline {
    let dir = default_model_dir();
    for file in [
        "centerface.onnx",
        "faceres-deep.onnx",
        "antispoof.onnx",
        "liveness.onnx",
    ] {
        assert!(
            dir.join(file).is_file(),
            "{file} missing in {}: run `cargo xtask models` (or set KYC_MODELS_DIR)",
            dir.display()
        );
    }
    LivenessPipeline::load(&dir, LivenessConfig::default()).unwrap()
}

/// Photos fetched by `cargo xtask eval faces` into `target/media-cache`.
fn photo(relative: &str) -> RgbImage {
    let root = match std::env::var_os("KYC_MEDIA_CACHE") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/media-cache"),
    };
    let path = root.join(relative);
    assert!(
        path.is_file(),
        "{} missing: run `cargo xtask eval faces` once to fetch the test photos (or set KYC_MEDIA_CACHE)",
        path.display()
    );
    image::open(&path).unwrap().to_rgb8()
}

const ASTRONAUT: &str = "scikit-image/files/skimage/data/astronaut.png";

fn demo(n: u32) -> String {
    format!("face-api/files/package/demo/sample{n}.jpg")
}

/// A selfie-like frame from a group photo: the square 1.8 × the largest
/// face's box around it (clamped to the photo), so the frame holds one face.
fn selfie(p: &LivenessPipeline, image: &RgbImage) -> RgbImage {
    let seen = p.observe(image, false, false).unwrap();
    let b = seen.face.expect("a face in the photo").bbox;
    let side = (b.width().max(b.height()) * 1.8).min(image.width().min(image.height()) as f32);
    let cx = (b.left + b.right) / 2.0;
    let cy = (b.top + b.bottom) / 2.0;
    let left = (cx - side / 2.0).clamp(0.0, image.width() as f32 - side) as u32;
    let top = (cy - side / 2.0).clamp(0.0, image.height() as f32 - side) as u32;
    image::imageops::crop_imm(image, left, top, side as u32, side as u32).to_image()
}

/// One selfie-like frame per photo with a face: the largest face of each of
/// the six face-api demo photos (group photos) and the astronaut.
fn calibration_photos(p: &LivenessPipeline) -> Vec<(String, RgbImage)> {
    let mut names: Vec<String> = (1..=6).map(demo).collect();
    names.push(ASTRONAUT.into());
    names
        .into_iter()
        .map(|n| {
            let image = selfie(p, &photo(&n));
            (n, image)
        })
        .collect()
}

fn check<'a>(report: &'a LivenessReport, name: &str) -> &'a Check {
    report
        .checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no check {name} in {:?}", report.checks))
}

/// The capture's spoof score as the pipeline decides it: the median over
/// ten swaying frames of `image`.
fn capture_score(p: &LivenessPipeline, image: &RgbImage) -> f32 {
    let report = p.passive(&swaying(image)).unwrap();
    check(&report, passive::SPOOF_CHECK).score as f32
}

/// The calibration behind [`LivenessConfig::DEFAULT_SPOOF_THRESHOLD`]:
/// every photo as a ten-frame capture as it is, printed and on a screen;
/// prints the capture scores (and the single-frame scores of both models),
/// and holds the threshold to what it claims — above every genuine capture.
/// Run it in release: `cargo test --release -p kyc-verify --
/// --ignored liveness_spoof_calibration --nocapture`.
#[test]
#[ignore = "needs cargo xtask models"]
fn liveness_spoof_calibration() {
    let p = pipeline();
    let threshold = p.config().spoof_threshold;
    let (mut real, mut print, mut screen) = (Vec::new(), Vec::new(), Vec::new());
    let (mut higher, mut compared) = ([0usize; 2], [0usize; 2]);
    println!(
        "photo          capture median spoof: real / printed / screen  \
         | one frame, liveness: real / printed / screen | antispoof: real / printed / screen"
    );
    for (name, image) in calibration_photos(&p) {
        let (printed, screen_copy) = (spoof::printed(&image), spoof::screen(&image));
        if let Some(dir) = std::env::var_os("KYC_LIVENESS_DUMP") {
            let base = Path::new(&dir).join(name.rsplit('/').next().unwrap_or(&name));
            for (kind, img) in [
                ("real", &image),
                ("printed", &printed),
                ("screen", &screen_copy),
            ] {
                img.save(base.with_extension(format!("{kind}.png")))
                    .unwrap();
            }
        }
        let [r, pr, sc] = [&image, &printed, &screen_copy].map(|i| capture_score(&p, i));
        let [r1, pr1, sc1] = [&image, &printed, &screen_copy]
            .map(|i| p.observe(i, true, false).unwrap().spoof)
            .map(|s| s.map_or((f32::NAN, f32::NAN), |s| (s.spoof, s.antispoof)));
        println!(
            "{:<14} {r:.4} / {pr:.4} / {sc:.4}                        \
             | {:.4} / {:.4} / {:.4}                    | {:.3} / {:.3} / {:.3}",
            name.rsplit('/').next().unwrap_or(&name),
            r1.0,
            pr1.0,
            sc1.0,
            r1.1,
            pr1.1,
            sc1.1
        );
        // A capture without one face in any frame scores 1 (the check fails
        // on it, as the faces check does); it says nothing about the model.
        let scored = |v: f32| (v < 1.0).then_some(v);
        if let Some(r) = scored(r) {
            real.push(r);
            if let Some(pr) = scored(pr) {
                higher[0] += usize::from(pr > r);
                compared[0] += 1;
            }
            if let Some(sc) = scored(sc) {
                higher[1] += usize::from(sc > r);
                compared[1] += 1;
            }
        }
        print.extend(scored(pr));
        screen.extend(scored(sc));
    }
    let caught = |v: &[f32]| v.iter().filter(|&&s| s > threshold).count();
    let max = |v: &[f32]| v.iter().copied().fold(0.0f32, f32::max);
    println!(
        "threshold {threshold}: genuine max {:.4}, declined {}/{}; printed caught {}/{}; \
         screen caught {}/{}; capture scored above its genuine photo: printed {}/{}, screen {}/{}",
        max(&real),
        caught(&real),
        real.len(),
        caught(&print),
        print.len(),
        caught(&screen),
        screen.len(),
        higher[0],
        compared[0],
        higher[1],
        compared[1]
    );
    assert_eq!(
        caught(&real),
        0,
        "the threshold must pass every genuine capture"
    );
    assert!(
        caught(&print) + caught(&screen) >= 4,
        "it should catch some spoofs"
    );
    assert!(real.len() >= 6, "most genuine captures must be scored");
    // Within a photo a re-capture raises the score in most cases.
    assert!(
        2 * higher[0] > compared[0] && 2 * higher[1] > compared[1],
        "{higher:?} of {compared:?}"
    );
}

/// The direction the model must keep: a printed copy and a screen replay
/// of a photo score higher than the photo itself, as ten-frame captures.
#[test]
#[ignore = "needs cargo xtask models"]
fn liveness_printed_and_screen_spoofs_score_higher_than_the_photo() {
    let p = pipeline();
    for image in [1, 3].map(|n| selfie(&p, &photo(&demo(n)))) {
        let real = capture_score(&p, &image);
        let printed = capture_score(&p, &spoof::printed(&image));
        let screen = capture_score(&p, &spoof::screen(&image));
        assert!(printed > real, "printed {printed} vs real {real}");
        assert!(screen > real, "screen {screen} vs real {real}");
        assert!(screen < 1.0 && printed < 1.0, "faces found in the spoofs");
    }
}

/// A hand-held capture of a live face, approximated by the photo swaying by
/// a few pixels: passes every passive check.
fn swaying(image: &RgbImage) -> Vec<RgbImage> {
    (0..10)
        .map(|i| {
            let t = i as f32 * 0.7;
            spoof::shifted(image, (t.sin() * 3.0) as i32, (t.cos() * 2.0) as i32)
        })
        .collect()
}

#[test]
#[ignore = "needs cargo xtask models"]
fn liveness_passive_passes_a_swaying_capture_and_fails_a_still_one() {
    let p = pipeline();
    let astronaut = photo(ASTRONAUT);
    let report = p.passive(&swaying(&astronaut)).unwrap();
    assert!(report.passed(), "{:#?}", report.checks);
    assert_eq!(report.frames.len(), 10);
    assert_eq!(
        report
            .frames
            .iter()
            .filter(|f| f.descriptor.is_some())
            .count(),
        3,
        "only the identity frames are described"
    );

    // The same photo sent ten times: nothing moves.
    let still = vec![astronaut.clone(); 10];
    let report = p.passive(&still).unwrap();
    let motion = check(&report, passive::MOTION_CHECK);
    assert!(!motion.passed && motion.score == 0.0, "{motion:?}");
    assert_eq!(motion.reason, Some(Reason::SpoofSuspected));
    assert!(check(&report, passive::FACES_CHECK).passed);
    assert!(check(&report, passive::IDENTITY_CHECK).passed);
    let decision = crate::decision::DecisionRules::default().decide(report.checks);
    assert_eq!(decision.verdict, crate::decision::Verdict::Declined);
}

#[test]
#[ignore = "needs cargo xtask models"]
fn liveness_passive_catches_a_swapped_face_and_an_empty_frame() {
    let p = pipeline();
    let mut frames = swaying(&selfie(&p, &photo(&demo(1))));
    // The identity frames are 0, 5 and 9: another person in frame 5.
    frames[5] = selfie(&p, &photo(&demo(3)));
    let report = p.passive(&frames).unwrap();
    let identity = check(&report, passive::IDENTITY_CHECK);
    assert!(!identity.passed, "{identity:?}");
    assert_eq!(identity.reason, Some(Reason::FaceMismatch));
    assert!(
        !check(&report, passive::CONTINUITY_CHECK).passed,
        "a swapped frame jumps"
    );

    frames[5] = RgbImage::from_pixel(640, 480, image::Rgb([120, 120, 120]));
    let report = p.passive(&frames).unwrap();
    let faces = check(&report, passive::FACES_CHECK);
    assert_eq!(faces.reason, Some(Reason::NoFace), "{faces:?}");
    assert!(report.frames[5].face.is_none());
}

#[test]
#[ignore = "needs cargo xtask models"]
fn liveness_passive_declines_a_printed_capture_of_a_photo_that_scores_clearly() {
    // sample3's printed copy is among the spoofs the threshold catches.
    let p = pipeline();
    let genuine = swaying(&selfie(&p, &photo(&demo(3))));
    let report = p.passive(&genuine).unwrap();
    assert!(
        check(&report, passive::SPOOF_CHECK).passed,
        "{:?}",
        report.checks
    );
    let printed: Vec<RgbImage> = genuine.iter().map(spoof::screen).collect();
    let report = p.passive(&printed).unwrap();
    let spoof_check = check(&report, passive::SPOOF_CHECK);
    assert!(!spoof_check.passed, "{spoof_check:?}");
    assert_eq!(spoof_check.reason, Some(Reason::SpoofSuspected));
}

/// `n` frames of `image` foreshortened ever more, up to `amount` (see
/// [`spoof::foreshorten`]), then held: a simulated turn or nod.
fn simulated(image: &RgbImage, face: &DetectedFace, amount: f32, vertical: bool) -> Vec<RgbImage> {
    let b = face.bbox;
    let centre = ((b.left + b.right) / 2.0, (b.top + b.bottom) / 2.0);
    let (half, fade) = if vertical {
        (b.height() * 0.6, b.width() * 0.6)
    } else {
        (b.width() * 0.6, b.height() * 0.7)
    };
    [0.5, 1.0, 1.0]
        .map(|t| spoof::foreshorten(image, centre, half, fade, amount * t, vertical))
        .into()
}

/// Real head poses: sample3 shows a head turned to the image's left, its
/// mirror image the same head turned to the right — a difference of about
/// 0.4 inter-eye distances, which the default rules must accept in the
/// asked direction only.
#[test]
#[ignore = "needs cargo xtask models"]
fn liveness_active_accepts_a_real_turn_only_in_the_asked_direction() {
    let p = pipeline();
    let image = selfie(&p, &photo(&demo(3)));
    let (toward_left, toward_right) = (image.clone(), spoof::mirrored(&image));
    let yaw = |i: &RgbImage| p.observe(i, false, false).unwrap().pose.unwrap().yaw;
    println!(
        "yaw: photo {:.3}, mirrored {:.3}",
        yaw(&toward_left),
        yaw(&toward_right)
    );
    let challenge_checks = |asked: Challenge, neutral: &RgbImage, turned: &RgbImage| {
        let report = p
            .active(
                &ChallengeSet::new(vec![asked]),
                &[neutral.clone(), neutral.clone()],
                &[vec![turned.clone(); 3]],
            )
            .unwrap();
        report
            .checks
            .into_iter()
            .find(|c| c.name.starts_with("liveness_challenge_"))
            .unwrap()
    };
    // The person turns to their left: the nose moves to the image's right.
    let c = challenge_checks(Challenge::TurnLeft, &toward_left, &toward_right);
    assert!(c.passed, "{c:?}");
    let c = challenge_checks(Challenge::TurnRight, &toward_left, &toward_right);
    assert!(!c.passed && c.score == 0.0, "{c:?}");
    let c = challenge_checks(Challenge::TurnRight, &toward_right, &toward_left);
    assert!(c.passed, "{c:?}");
    // Nodding was not asked for and did not happen.
    let c = challenge_checks(Challenge::LookUp, &toward_left, &toward_right);
    assert!(!c.passed, "{c:?}");
}

/// Simulated movements through the real detector: every direction reads
/// the right way round, challenges count only in their own order, and a
/// still photo fails them all. The simulation moves the landmarks less
/// than a real head does, so the bars here are lowered (see
/// [`spoof::foreshorten`]); the default bars are tested on real poses
/// above and on landmark geometry in `active.rs`.
#[test]
#[ignore = "needs cargo xtask models"]
fn liveness_active_follows_the_asked_movements_in_order() {
    let config = LivenessConfig {
        challenges: ChallengeRules {
            yaw_turn: 0.08,
            pitch_turn: 0.03,
            frames_held: 2,
        },
        ..LivenessConfig::default()
    };
    let p = LivenessPipeline::load(&default_model_dir(), config).unwrap();
    let astronaut = photo(ASTRONAUT);
    let face = p.observe(&astronaut, false, false).unwrap().face.unwrap();
    let left = simulated(&astronaut, &face, 0.5, false);
    let right = simulated(&astronaut, &face, -0.5, false);
    let up = simulated(&astronaut, &face, -0.35, true);
    let down = simulated(&astronaut, &face, 0.35, true);
    let pose_of = |img: &RgbImage| p.observe(img, false, false).unwrap().pose.unwrap();
    println!(
        "straight {:?}\nleft {:?}\nright {:?}\nup {:?}\ndown {:?}",
        pose_of(&astronaut),
        pose_of(&left[2]),
        pose_of(&right[2]),
        pose_of(&up[2]),
        pose_of(&down[2])
    );
    let neutral = vec![astronaut.clone(); 2];
    let challenge_checks = |report: LivenessReport| -> Vec<Check> {
        report
            .checks
            .into_iter()
            .filter(|c| c.name.starts_with("liveness_challenge_"))
            .collect()
    };

    let asked = ChallengeSet::new(Challenge::ALL.to_vec());
    let segments = vec![left.clone(), right.clone(), up.clone(), down.clone()];
    let checks = challenge_checks(p.active(&asked, &neutral, &segments).unwrap());
    assert!(checks.iter().all(|c| c.passed), "{checks:#?}");

    // The same recording against another attempt's order fails wherever
    // the movements differ.
    let other = ChallengeSet::new(vec![
        Challenge::TurnRight,
        Challenge::TurnLeft,
        Challenge::LookDown,
        Challenge::LookUp,
    ]);
    let checks = challenge_checks(p.active(&other, &neutral, &segments).unwrap());
    assert!(checks.iter().all(|c| !c.passed), "{checks:#?}");
    assert!(
        checks
            .iter()
            .all(|c| c.reason == Some(Reason::ChallengeFailed))
    );

    // A still photo: nothing moves from the neutral pose.
    let still = vec![vec![astronaut.clone(); 3]; 4];
    let checks = challenge_checks(p.active(&asked, &neutral, &still).unwrap());
    assert!(checks.iter().all(|c| !c.passed), "{checks:#?}");
}

#[test]
#[ignore = "needs cargo xtask models"]
fn liveness_active_needs_faces() {
    let p = pipeline();
    let grey = RgbImage::from_pixel(320, 240, image::Rgb([90, 90, 90]));
    let report = p
        .active(
            &ChallengeSet::new(vec![Challenge::TurnLeft]),
            std::slice::from_ref(&grey),
            &[vec![grey.clone(); 3]],
        )
        .unwrap();
    assert_eq!(
        check(&report, passive::FACES_CHECK).reason,
        Some(Reason::NoFace)
    );
    assert!(!report.passed());
}

/// User + system CPU seconds of the calling thread (Linux, from
/// `/proc/thread-self/stat`, 100 ticks a second); 0 elsewhere.
fn thread_cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/thread-self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which is in parentheses): utime is the
    // 12th, stime the 13th.
    let rest = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// Prints what ten frames of passive liveness cost (meaningful in release:
/// `cargo test --release -p kyc-verify -- --ignored liveness_passive_timing --nocapture`).
#[test]
#[ignore = "needs cargo xtask models"]
fn liveness_passive_timing() {
    let p = pipeline();
    let frames = swaying(&selfie(&p, &photo(&demo(2))));
    p.passive(&frames).unwrap(); // plans built, caches warm
    let start = Instant::now();
    let cpu_start = thread_cpu_seconds();
    let runs = 3;
    for _ in 0..runs {
        p.passive(&frames).unwrap();
    }
    let per_capture = start.elapsed() / runs;
    // CPU time of this thread: what the capture costs when the machine is
    // shared with builds (wall time then grows, CPU time hardly).
    let cpu_per_capture = (thread_cpu_seconds() - cpu_start) / f64::from(runs);
    println!(
        "passive liveness CPU time per capture: {:.0} ms",
        cpu_per_capture * 1000.0
    );
    let models = SpoofModels::load(&default_model_dir()).unwrap();
    let face = p.observe(&frames[0], false, false).unwrap().face.unwrap();
    let start = Instant::now();
    for _ in 0..20 {
        models.score(&frames[0], &face.bbox, 1.3).unwrap();
    }
    let spoof_models = start.elapsed() / 20;
    let start = Instant::now();
    for _ in 0..10 {
        p.observe(&frames[0], false, false).unwrap();
    }
    let detection = start.elapsed() / 10;
    let start = Instant::now();
    for _ in 0..10 {
        p.observe(&frames[0], false, true).unwrap();
    }
    let described = start.elapsed() / 10;
    println!(
        "passive liveness, 10 frames of {}×{}: {per_capture:?} per capture; per frame: \
         detection {detection:?}, both spoof models {spoof_models:?}, detection + descriptor {described:?}",
        frames[0].width(),
        frames[0].height(),
    );
}

#[test]
#[ignore = "needs cargo xtask models"]
fn liveness_frames_observed_side_by_side_match_one_by_one() {
    let p = pipeline();
    let frames = swaying(&selfie(&p, &photo(&demo(2))));
    // Other tests may run meanwhile: the thread count changes their speed,
    // not their results.
    crate::runtime::configure(1);
    let one = p.passive(&frames).unwrap();
    crate::runtime::configure(2);
    let two = p.passive(&frames).unwrap();
    crate::runtime::configure(1);
    assert_eq!(one.frames.len(), two.frames.len());
    for (i, (a, b)) in one.frames.iter().zip(&two.frames).enumerate() {
        assert_eq!(a.faces, b.faces, "frame {i}");
        let (fa, fb) = (a.face.as_ref().unwrap(), b.face.as_ref().unwrap());
        assert!((fa.bbox.left - fb.bbox.left).abs() < 1e-3, "frame {i}");
        let (sa, sb) = (a.spoof.unwrap(), b.spoof.unwrap());
        assert!((sa.spoof - sb.spoof).abs() < 1e-4, "frame {i}");
        assert_eq!(a.descriptor.is_some(), b.descriptor.is_some(), "frame {i}");
    }
    for (a, b) in one.checks.iter().zip(&two.checks) {
        assert_eq!((&a.name, a.passed), (&b.name, b.passed));
        assert!((a.score - b.score).abs() < 1e-3, "{a:?} {b:?}");
    }
}
