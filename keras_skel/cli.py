"""The `keras-skel` command line: a thin layer over the library functions.

TensorFlow is imported inside the commands that need it, so `keras-skel --help` is instant.
Errors keras-skel raises on purpose (`KerasSkelError`) are printed as one line, exit code 2.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

import click

from keras_skel.demo import DEFAULT_MODEL
from keras_skel.errors import KerasSkelError
from keras_skel.export.tflite import QUANTIZATIONS

__all__ = ["main", "cli"]


def _quiet_tensorflow() -> None:
    # oneDNN / CUDA-probe info lines drown the output a user reads.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _parse_size(value: str) -> tuple[int, int]:
    text = value.lower().replace("×", "x")
    try:
        parts = [int(p) for p in text.split("x")]
    except ValueError:
        raise click.BadParameter(f"{value!r}: expected S or HxW, e.g. 256 or 192x256") from None
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or min(parts) < 32:
        raise click.BadParameter(f"{value!r}: expected S or HxW with sides >= 32")
    return parts[0], parts[1]


def _parse_thin_size(value: str, volumes: bool) -> tuple[int, ...]:
    rank = 3 if volumes else 2
    form = "S or DxHxW" if volumes else "S or HxW"
    try:
        parts = [int(p) for p in value.lower().replace("×", "x").split("x")]
    except ValueError:
        example = "32 or 32x48x48" if volumes else "96 or 96x128"
        raise click.BadParameter(f"{value!r}: expected {form}, e.g. {example}") from None
    if len(parts) == 1:
        parts = parts * rank
    if len(parts) != rank or min(parts) < 16:
        raise click.BadParameter(f"{value!r}: expected {form} with sides >= 16")
    return tuple(parts)


class _Group(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except KerasSkelError as err:
            click.echo(f"error: {err}", err=True)
            ctx.exit(2)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="keras-skel")
def cli():
    """keras-skel: learned skeleton extraction with TensorFlow / Keras 3.

    \b
    Quick start:
      keras-skel demo                          # shipped U-Net vs classical on noisy shapes
      keras-skel data synth --task shapes --count 200 --size 128 --out data/shapes
      keras-skel train unet_shapes --out runs/unet
      keras-skel evaluate --model runs/unet --data data/shapes
      keras-skel predict --model runs/unet data/shapes/shapes --out out/
    """


@cli.group()
def data():
    """Make and inspect datasets."""


@data.command("synth")
@click.option("--task", type=click.Choice(["shapes", "thin", "natural", "volumes"]), default="shapes",
              show_default=True,
              help="shapes: binary shapes + skeletons; thin: vessels, cracks and roads on textured "
                   "backgrounds + label maps (segmentation); natural: textured objects on cluttered "
                   "RGB scenes + the objects' skeletons (DeepFlux); volumes: chair / table / lamp objects "
                   "rendered from several views + occupancy, surface points, curve/sheet skeleton points "
                   "and skeletal volumes (SkeletonNet).")
@click.option("--count", type=click.IntRange(min=1), required=True, help="Number of samples.")
@click.option("--size", default="256", show_default=True, help="Image size: S or HxW.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True, help="Output folder.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed; same seed, same data.")
@click.option("--noise", type=click.FloatRange(min=0), default=2.0, show_default=True,
              help="Boundary noise on the inputs in px (0 = clean); targets stay clean.")
@click.option("--noise-style", type=click.Choice(["field", "bumps", "mixed"]), default="field", show_default=True,
              help="field: the whole boundary wavers; bumps: separate bumps and dents, the rest exact; "
                   "mixed: one of the two per sample.")
@click.option("--split", type=click.Choice(["all", "train", "heldout"]), default="all", show_default=True,
              help="Shape variants: train leaves out the held-out ones (birds); heldout draws only those "
                   "and glyphs in fonts no training split uses (Computer Modern). --task natural: also the "
                   "photographs and textures of the backgrounds.")
@click.option("--clean", is_flag=True, help="Also write OUT/clean/<id>.png, the noise-free shapes (targets of "
              "shape-denoising models, data.target: shape).")
@click.option("--classes", type=click.IntRange(1, 8), default=1, show_default=True,
              help="--task thin: foreground classes (1 = binary).")
@click.option("--3d", "volumes", is_flag=True, help="--task thin: 3-D volumes of SxSxS (or DxHxW) voxels.")
@click.option("--structure", type=click.Choice(["mixed", "vessels", "cracks", "roads"]), default="mixed",
              show_default=True, help="--task thin: which thin structures.")
@click.option("--resolution", type=click.IntRange(8, 256), default=32, show_default=True,
              help="--task volumes: voxel grid size of the occupancy and skeletal volumes.")
@click.option("--views", type=click.IntRange(1, 24), default=3, show_default=True,
              help="--task volumes: renderings per object.")
@click.option("--photos", type=click.Path(exists=True, file_okay=False), default=None,
              help="--task natural: a folder of your photographs (searched recursively) to texture backgrounds, "
                   "clutter and objects with, beside scikit-image's samples; about one file name in four belongs "
                   "to the heldout split, the rest to train.")
@click.option("--overwrite", is_flag=True, help="Replace samples in an existing dataset folder.")
def data_synth(task, count, size, out_dir, seed, noise, noise_style, split, clean, classes, volumes, structure,
               resolution, views, photos, overwrite):
    """Synthesize a dataset: binary shapes (OUT/shapes/<id>.png, OUT/skeletons/<id>.png),
    thin structures (OUT/images/<id>.png|.npy, OUT/labels/<id>.png|.npy, OUT/dataset.json) or
    natural images (OUT/images/<id>.png RGB, OUT/skeletons/<id>.png, OUT/masks/<id>.png).

    Shapes: blobs, polygons, strokes, trees, animal-like bodies, font glyphs, shapes with
    holes; random scale, rotation and position. Targets follow the ground-truth rule
    (skeletonize, prune terminal branches < 10 px, skeletonize).

    \b
    Example:
      keras-skel data synth --task shapes --count 500 --size 256 --out data/shapes --seed 1
      keras-skel data synth --count 100 --size 256 --split heldout --noise 3 --noise-style bumps \\
          --out data/heldout_noisy
      keras-skel data synth --task thin --classes 3 --count 200 --size 96 --out data/thin
      keras-skel data synth --task thin --3d --count 50 --size 32 --out data/thin3d
      keras-skel data synth --task natural --count 4000 --size 256 --split train --out data/natural_train
      keras-skel data synth --task natural --count 4000 --split train --photos ~/photos --out data/natural_train
      keras-skel data synth --task volumes --count 300 --size 64 --resolution 32 --views 3 --out data/volumes
    """
    if photos is not None and task != "natural":
        raise click.UsageError("--photos is an option of --task natural")
    if task == "volumes":
        from keras_skel.data.volumes import write_volumes_dataset

        side = _parse_size(size)
        if side[0] != side[1]:
            raise click.BadParameter(f"{size!r}: renderings are square; give one size, e.g. 64", param_hint="--size")
        n = write_volumes_dataset(out_dir, count, seed=seed, resolution=resolution, image_size=side[0], views=views,
                                  overwrite=overwrite, workers=min(4, os.cpu_count() or 1), progress=True)
        click.echo(f"wrote {n} objects to {out_dir}")
        return
    if task == "natural":
        if classes != 1 or volumes or structure != "mixed" or clean:
            raise click.UsageError("--classes, --3d, --structure and --clean are not options of --task natural")
        from keras_skel.data.natural import write_natural_dataset

        n = write_natural_dataset(out_dir, count, _parse_size(size), seed=seed, split=split, overwrite=overwrite,
                                  workers=min(4, os.cpu_count() or 1), progress=True, photos=photos)
        click.echo(f"wrote {n} images to {out_dir}")
        return
    if task == "thin":
        from keras_skel.data.thin import write_thin_dataset

        dims = _parse_thin_size(size, volumes)
        write_thin_dataset(out_dir, count, dims, seed=seed, classes=classes,
                           kind=None if structure == "mixed" else structure, progress=True, overwrite=overwrite)
        click.echo(f"wrote {count} {'volumes' if volumes else 'images'} to {out_dir}")
        return
    if classes != 1 or volumes or structure != "mixed":
        raise click.UsageError("--classes, --3d and --structure are options of --task thin")
    from keras_skel.data.synthetic import write_shapes_dataset

    n = write_shapes_dataset(out_dir, count, _parse_size(size), seed=seed, noise=noise,
                             progress=True, overwrite=overwrite, split=split, noise_style=noise_style,
                             with_clean=clean)
    click.echo(f"wrote {n} samples to {out_dir}")


@data.command("convert")
@click.argument("src", type=click.Path())
@click.option("--from", "layout", required=True,
              type=click.Choice(["skelneton", "sk-large", "sk506", "wh-symmax", "sym-pascal", "symmax300"]),
              help="The source layout: skelneton = Pixel SkelNetOn label images (white shape, blue skeleton) "
                   "or coords_/skelpoints_/skeledges_<name>.txt point files; the skeleton benchmarks = "
                   "SRC/images/<split>/*.jpg + SRC/groundTruth/<split>/*.mat.")
@click.option("--split", type=click.Choice(["train", "test"]), default="test", show_default=True,
              help="Skeleton benchmarks: which split to convert.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True, help="Output dataset folder.")
@click.option("--overwrite", is_flag=True, help="Write into a folder that already holds samples.")
def data_convert(src, layout, split, out_dir, overwrite):
    """Convert a published dataset layout: SkelNetOn to OUT/shapes + OUT/skeletons; the skeleton
    benchmarks (SK-LARGE, SK506, WH-SYMMAX, SYM-PASCAL, SYMMAX300) to OUT/images (RGB) +
    OUT/skeletons (+ OUT/radii when the .mat has an edge map).

    \b
    Example:
      keras-skel data convert --from skelneton skelneton/val --out data/skelneton_val
      keras-skel evaluate --model canet_shapes --data data/skelneton_val --tolerance 0
      keras-skel data convert --from sk-large data/SK-LARGE --split test --out data/sklarge_test
    """
    if layout == "skelneton":
        from keras_skel.data.skelneton import convert_skelneton

        n = convert_skelneton(src, out_dir, overwrite=overwrite)
    else:
        from keras_skel.data.sklarge import convert_benchmark

        n = convert_benchmark(src, layout, split, out_dir, overwrite=overwrite)
    click.echo(f"converted {n} samples from {src} to {out_dir}")


@cli.command()
@click.argument("recipe")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a config value, e.g. --set train.epochs=5 (repeatable).")
@click.option("--out", "run_dir", type=click.Path(file_okay=False), default=None,
              help="Run directory (default runs/<recipe>); an interrupted run there resumes.")
@click.option("--overwrite", is_flag=True, help="Replace a finished run in --out.")
@click.option("--init-from", "init_from", default=None, metavar="MODEL",
              help="Start from the weights of a model of the same architecture: a run dir, a .keras "
                   "file or a shipped model's name (e.g. unet_shapes, for fine-tuning). From an ensemble "
                   "(e.g. denoiser_shapes) add --set train.init_member=K to pick its member.")
@click.option("--folds", type=click.IntRange(min=1), default=1, show_default=True,
              help="Train an ensemble of K members on K splits (seeds seed..seed+K-1) into --out/fold_k; "
                   "predict/evaluate/export take the --out folder as one averaged model.")
@click.option("--reselect", is_flag=True,
              help="Do not train: redo the threshold choice (and input-skip calibration) of the finished run "
                   "in --out with the --set eval.* overrides.")
def train(recipe, overrides, run_dir, overwrite, init_from, folds, reselect):
    """Train a model from RECIPE (a shipped recipe name or a YAML path).

    Shipped recipes: shape_denoiser (denoise, then the ground-truth rule), canet_shapes (the shipped CANet,
    gated), canet_clean_shape, canet_ablation, unet_shapes (CPU-sized), unet_shapes_256, unet_paper
    (paper-sized), deepflux_natural, unet_tiny, canet_tiny and denoiser_tiny (tests).
    The run directory receives config.yaml, best.keras, model.json (threshold),
    metrics.json, history.csv, TensorBoard logs and a resumable backup.

    \b
    Example:
      keras-skel train unet_shapes --set train.epochs=5 --out runs/unet
      keras-skel train unet_shapes_256 --init-from unet_shapes --set data.source=folder \\
          --set data.train_dir=my_shapes --out runs/finetuned
      keras-skel train canet_tiny --folds 3 --out runs/ensemble
      keras-skel train canet_shapes --out runs/canet --reselect --set eval.gate_radius=3
      keras-skel train deepflux_natural --out runs/deepflux_natural --reselect --set eval.tta=true \\
          --set "eval.scales=[0.75,1.0]"
    """
    _quiet_tensorflow()
    from keras_skel.config import load_config
    from keras_skel.training import train as run_training

    if init_from:
        overrides = (*overrides, f"train.init_from={init_from}")
    cfg = load_config(recipe, overrides)
    run_dir = run_dir or str(Path("runs") / Path(recipe).stem)
    command = shlex.join(["keras-skel", *sys.argv[1:]])
    if folds > 1 and cfg.task in ("natural", "volumes", "thin"):
        raise click.UsageError(f"--folds is for binary-shape recipes; {recipe} is task {cfg.task}")
    if reselect and cfg.task in ("volumes", "thin"):
        raise click.UsageError(f"--reselect is for binary-shape and natural-image recipes; {recipe} is task {cfg.task}")
    if reselect:
        from keras_skel.training import reselect as reselect_run

        result = reselect_run(run_dir, overrides, command=command)
        if cfg.task == "natural":
            v = result.val_scores
            click.echo(f"run {result.run_dir}: threshold {result.threshold:g}, validation skeleton F1 "
                       f"{v['skeleton']['f1']:.4f} within {cfg.eval.tolerance:g} px, benchmark ODS "
                       f"{v['benchmark']['ods_f']:.4f}")
            return
        click.echo(f"run {result.run_dir}: threshold {result.threshold:.2f}, validation F1 exact "
                   f"{result.val_exact_f1:.4f}, {cfg.eval.tolerance:g}-px {result.val_tolerant_f1:.4f}")
        return
    if folds > 1:
        from keras_skel.ensemble import train_folds

        for k, result in enumerate(train_folds(cfg, run_dir, folds, overwrite=overwrite, command=command), 1):
            click.echo(f"fold {k}: {result.run_dir}, threshold {result.threshold:.2f}, validation F1 exact "
                       f"{result.val_exact_f1:.4f}, {cfg.eval.tolerance:g}-px {result.val_tolerant_f1:.4f}")
        click.echo(f"ensemble of {folds} in {run_dir}: use it as --model {run_dir} or export it")
        return
    result = run_training(cfg, run_dir, overwrite=overwrite, command=command)
    if result.val_scores is not None:
        v = result.val_scores
        if cfg.task == "volumes":
            parts = ", ".join(f"{k} {v:.5f}" for k, v in v.items() if k.startswith("cd"))
            click.echo(f"run {result.run_dir}: {result.epochs} epochs in {result.train_seconds:.0f} s, validation "
                       f"Chamfer distance {parts} (mean squared, unit cube, {v['count']} views)")
            volume = f"volume IoU {v['iou']:.4f} at threshold {v['threshold']:.2f}, " if "iou" in v else ""
            click.echo(f"  {volume}quantize+dilate IoU {v['iou_quantize']:.4f}")
        elif cfg.task == "natural":
            click.echo(f"run {result.run_dir}: {result.epochs} epochs in {result.train_seconds:.0f} s, threshold "
                       f"{result.threshold:g}, validation skeleton F1 {v['skeleton']['f1']:.4f} within "
                       f"{cfg.eval.tolerance:g} px, benchmark ODS {v['benchmark']['ods_f']:.4f}")
        else:
            click.echo(f"run {result.run_dir}: {result.epochs} epochs in {result.train_seconds:.0f} s, validation "
                       f"Dice {v['dice']:.4f}, clDice {v['cldice']:.4f}, Betti errors b0 {v['betti0']:.2f}, "
                       f"b1 {v['betti1']:.2f} (means over classes and images)")
        import json

        m = json.loads((Path(result.run_dir) / "metrics.json").read_text())
        if m.get("samples_per_second_pipeline") and m.get("samples_per_second_training"):
            click.echo(f"input pipeline {m['samples_per_second_pipeline']:.1f} samples/s (alone), training step "
                       f"{m['samples_per_second_training']:.1f} samples/s "
                       f"(median step {1000 * m['step_seconds']:.0f} ms)")
        return
    click.echo(f"run {result.run_dir}: {result.epochs} epochs in {result.train_seconds:.0f} s, "
               f"threshold {result.threshold:.2f}, validation F1 exact {result.val_exact_f1:.4f}, "
               f"{cfg.eval.tolerance:g}-px {result.val_tolerant_f1:.4f}")


@cli.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="New (or empty) folder for the ensemble; it names the runs by relative paths.")
@click.option("--choose-on", "choose_on", type=click.Path(exists=True, file_okay=False), default=None,
              help="Dataset folder (shapes/, skeletons/) no member trained on: choose the ensemble's threshold "
                   "there (default: the mean of the members' thresholds).")
@click.option("--tta", is_flag=True, help="Choose the threshold with D4 test-time augmentation (then always run).")
@click.option("--tolerance", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Matching distance (px) of the F1 the threshold maximizes (0 = exact).")
def ensemble(runs, out_dir, choose_on, tta, tolerance):
    """Average finished binary-shape runs trained apart (e.g. on different noise levels) as one model.

    Writes OUT/ensemble.json; OUT is then a model for predict, evaluate and export, like a
    `train --folds` folder. Keep the runs where they are: the ensemble refers to them.

    \b
    Example:
      keras-skel ensemble runs/dn_noise3 runs/dn_noise5 --out runs/dn_both --choose-on data/selection --tta
    """
    _quiet_tensorflow()
    from keras_skel.ensemble import combine_runs

    if tta and choose_on is None:
        raise click.UsageError("--tta applies to the threshold choice: give --choose-on DATA too")
    command = shlex.join(["keras-skel", *sys.argv[1:]])
    record = combine_runs(runs, out_dir, choose_on=choose_on, tta=tta, tolerance=tolerance, command=command)
    if "threshold_table" in record:
        click.echo(f"ensemble of {len(runs)} in {out_dir}: threshold {record['threshold']:g} chosen on "
                   f"{record['threshold_samples']} samples of {choose_on} (F1 within {tolerance:g} px"
                   f"{', D4 TTA' if tta else ''})")
    else:
        click.echo(f"ensemble of {len(runs)} in {out_dir}: threshold {sum(record['thresholds']) / len(runs):.4g} "
                   "(the mean of the members')")


def _model_task(model: str) -> str | None:
    """The task a model's record (model.json or model card) names, None if none."""
    from keras_skel.detection import model_task

    return model_task(model)


@cli.command()
@click.option("--model", "model", required=True,
              help="'classical', a run dir, a .keras file, a SavedModel dir, a .tflite file, a shipped "
                   "model name, or http://HOST:PORT/v1/models/NAME.")
@click.option("--data", "data_dir", type=click.Path(), required=True,
              help="Dataset folder with shapes/ and skeletons/ (for a thin-structure run: images/, labels/ "
                   "and dataset.json).")
@click.option("--tolerance", type=click.FloatRange(min=0), default=None,
              help="Matching distance (px) of the tolerant F1 [default: 2; natural-image models: 4, the "
                   "benchmarks' 0.01 x diagonal of 256 x 256 images].")
@click.option("--report", "report_dir", type=click.Path(file_okay=False), default=None,
              help="Write report.json and overlays.png here.")
@click.option("--threshold", type=click.FloatRange(0, 1), default=None,
              help="Override the model's stored threshold.")
@click.option("--skip-bad", is_flag=True, help="Skip unreadable or mismatched pairs (with a count).")
@click.option("--tta", is_flag=True, help="D4 test-time augmentation: average the 8 rotations/mirrors "
              "(8x compute; Keras models / run dirs).")
@click.option("--overwrite", is_flag=True, help="Replace an existing report in --report.")
def evaluate(model, data_dir, tolerance, report_dir, threshold, skip_bad, overwrite, tta):
    """Score a model on a dataset folder: exact and tolerant skeleton F1 (for a thin-structure
    run: Dice, clDice and Betti-number errors per class; for a SkeletonNet on a volumes folder:
    volume IoU, the quantize+dilate IoU of its points and their Chamfer distance).

    F1 is dataset-level (pixel counts summed over images); the per-image mean is shown beside
    it. Overlays: yellow correct, green missed, red extra.

    \b
    Example:
      keras-skel evaluate --model runs/unet --data data/test --tolerance 2 --report reports/unet
      keras-skel evaluate --model deepflux_natural --data data/natural_heldout --report reports/deepflux
      keras-skel evaluate --model skeletonnet_synth --data data/volumes64_heldout
    """
    _quiet_tensorflow()
    task = _model_task(model)
    if task == "natural" or (model == "classical" and Path(data_dir, "images").is_dir()
                                and Path(data_dir, "skeletons").is_dir()):
        if skip_bad or tta:
            raise click.UsageError("--skip-bad and --tta are options of binary-shape models (a natural-image run "
                                   "chooses test-time augmentation at training: --reselect RUN --set eval.tta=true)")
        from keras_skel.detection import evaluate_natural_folder, format_natural_report

        report = evaluate_natural_folder(model, data_dir, 4.0 if tolerance is None else tolerance, report_dir,
                                         overwrite=overwrite, threshold=threshold, progress=True)
        click.echo(format_natural_report(report))
        if report_dir:
            click.echo(f"report: {Path(report_dir) / 'report.json'}, PR curve: {Path(report_dir) / 'pr_curve.png'}")
        return
    tolerance = 2.0 if tolerance is None else tolerance
    if task == "volumes":
        if skip_bad or tta or threshold is not None or report_dir:
            raise click.UsageError("--skip-bad, --tta, --threshold and --report are options of 2-D skeleton models")
        import json

        from keras_skel.data.volumes import load_volumes_folder
        from keras_skel.skeletal_points import evaluate_predictor, load_points_predictor

        scores = evaluate_predictor(load_points_predictor(model), load_volumes_folder(data_dir)[1])
        volume = f"volume IoU {scores['iou']:.4f}, " if "iou" in scores else ""
        click.echo(f"{model} on {data_dir} ({scores['count']} views): {volume}quantize+dilate IoU of its points "
                   f"{scores['iou_quantize']:.4f}, Chamfer distance {scores['cd']:.6f} (mean squared, unit cube)")
        click.echo(json.dumps(scores))
        return
    if task == "thin":
        from keras_skel.segmentation import evaluate_folder, format_segmentation_report

        report = evaluate_folder(model, data_dir, report_dir, overwrite=overwrite, progress=True)
        click.echo(format_segmentation_report(report))
        if report_dir:
            click.echo(f"report: {Path(report_dir) / 'report.json'}")
        return
    from keras_skel.evaluation import evaluate as run_evaluation
    from keras_skel.evaluation import format_report

    report = run_evaluation(model, data_dir, tolerance=tolerance, report_dir=report_dir,
                            threshold=threshold, on_error="skip" if skip_bad else "raise", progress=True,
                            overwrite=overwrite, tta=tta)
    click.echo(format_report(report))
    if report_dir:
        click.echo(f"report: {Path(report_dir) / 'report.json'}, pictures: {Path(report_dir) / 'overlays.png'}")


@cli.command()
@click.option("--model", "model", default=DEFAULT_MODEL, show_default=True,
              help="'classical', a run dir, a .keras file, a SavedModel dir, a .tflite file, a shipped "
                   "model name, or http://HOST:PORT/v1/models/NAME.")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True, help="Output folder.")
@click.option("--overlay", is_flag=True, help="Also write <stem>_overlay.png pictures.")
@click.option("--save-probability", is_flag=True,
              help="Also write <stem>_probability.png (16-bit grey: value / 65535 = probability).")
@click.option("--threshold", type=click.FloatRange(0, 1), default=None, help="Override the stored threshold.")
@click.option("--tta", is_flag=True, help="D4 test-time augmentation: average the 8 rotations/mirrors "
              "(8x compute; Keras models / run dirs).")
@click.option("--overwrite", is_flag=True, help="Replace existing output files.")
def predict(model, inputs, out_dir, overlay, save_probability, threshold, overwrite, tta):
    """Skeletonize INPUTS (image files or folders) into OUT/<stem>.png.

    With a thin-structure run as --model: label maps of INPUTS (images, or .npy volumes for a
    3-D model) into OUT/<stem>.png / OUT/<stem>.npy (value = class, 0 = background).

    With a natural-image (DeepFlux) model: object skeletons of RGB images into OUT/<stem>.png;
    --overlay adds <stem>_overlay.png (skeleton over the image) and <stem>_flux.png (the flux
    field: direction as hue, magnitude as brightness).

    With a SkeletonNet (volumes) model: per RGB image OUT/<stem>_points.ply (skeletal points,
    label 0 curve / 1 sheet), <stem>_volume.npy (skeletal volume), <stem>_mesh.obj (its marching
    cubes) and <stem>_points.png (the points over the input).

    \b
    Example:
      keras-skel predict --model runs/unet data/shapes/shapes --out predictions --overlay
      keras-skel predict --model deepflux_natural photo.jpg --out skeletons --overlay
      keras-skel predict --model skeletonnet_synth chair.png --out skeletal
    """
    _quiet_tensorflow()
    task = _model_task(model)
    if task == "natural":
        if save_probability or tta:
            raise click.UsageError("--save-probability and --tta are options of binary-shape models (a natural-image "
                                   "run chooses test-time augmentation at training: --reselect RUN --set "
                                   "eval.tta=true)")
        from keras_skel.detection import predict_natural_files

        written = predict_natural_files(model, inputs, out_dir, overlay_pictures=overlay, overwrite=overwrite,
                                        threshold=threshold)
        click.echo(f"wrote {len(written)} skeletons to {out_dir}")
        return
    if task == "volumes":
        if save_probability or threshold is not None or tta or overlay:
            raise click.UsageError("--save-probability, --threshold, --tta and --overlay are options of 2-D skeleton "
                                   "models (a SkeletonNet writes its picture, <stem>_points.png, always)")
        from keras_skel.skeletal_points import predict_volume_files

        written = predict_volume_files(model, inputs, out_dir, overwrite=overwrite)
        click.echo(f"wrote skeletal points, volumes and meshes of {len(written)} images to {out_dir}")
        return
    if task == "thin":
        if save_probability or threshold is not None or tta:
            raise click.UsageError("--save-probability, --threshold and --tta are options of skeleton models")
        from keras_skel.segmentation import predict_thin_files

        written = predict_thin_files(model, inputs, out_dir, overlay_pictures=overlay, overwrite=overwrite)
        click.echo(f"wrote {len(written)} label maps to {out_dir}")
        return
    from keras_skel.prediction import predict_files

    written = predict_files(model, inputs, out_dir, overlay_pictures=overlay, save_probability=save_probability,
                            threshold=threshold, overwrite=overwrite, progress=True, tta=tta)
    click.echo(f"wrote {len(written)} skeletons to {out_dir}")


@cli.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--name", required=True, help="Model name: saved_models/NAME/VERSION/ and the TF Serving name.")
@click.option("--version", "version", type=click.IntRange(min=1), default=None,
              help="Version number (default: one above the highest existing).")
@click.option("--root", type=click.Path(file_okay=False), default="saved_models", show_default=True,
              help="Models folder.")
@click.option("--tflite", is_flag=True, help="Also write ROOT/NAME.tflite (builtin ops only).")
@click.option("--quantize", type=click.Choice(QUANTIZATIONS), multiple=True,
              help="TFLite variants (repeatable; implies --tflite; default none): float16 weights, "
                   "dynamic-range int8, or full-integer int8 calibrated on synthetic shapes. "
                   "Files: NAME[_VARIANT].tflite.")
@click.option("--tflite-size", default="256", show_default=True, help="Fixed TFLite input size: S or HxW.")
@click.option("--eval", "eval_dirs", multiple=True, type=click.Path(exists=True, file_okay=False),
              help="Dataset folder to score the export and the classical baseline on (repeatable); "
                   "the scores go into the model card.")
@click.option("--tta", is_flag=True, help="Bake D4 test-time augmentation into the graphs (8x compute).")
@click.option("--force", is_flag=True, help="Replace an existing version or .tflite file.")
@click.option("--note", "notes", multiple=True, metavar="TEXT",
              help="A line for the model card's notes (e.g. how the run was made; repeatable).")
def export(run_dir, name, version, root, tflite, quantize, tflite_size, eval_dirs, force, tta, notes):
    """Export a training run as a SavedModel for TF Serving (and TFLite models).

    Writes ROOT/NAME/VERSION/ atomically: signatures serving_default (images float32
    [N,H,W,1] -> skeleton uint8, probability float32) and predict_png (PNG bytes -> PNG
    bytes), with binarization, padding, threshold and thinning as graph ops, and
    assets.extra/model_card.json. An existing version is never replaced without --force.
    A thin-structure run exports images (or volumes) -> labels uint8, probability float32
    (2-D: also predict_png and --tflite); --eval DIR then scores it on a thin folder.

    \b
    Example:
      keras-skel export runs/unet --name unet_shapes --tflite --quantize none --quantize float16
      keras-skel export runs/thin_recall --name my_vessels --tflite --eval data/thin
    """
    _quiet_tensorflow()
    from keras_skel.export import export_run

    result = export_run(run_dir, name, root=root, version=version, force=force, tflite=tflite or bool(quantize),
                        quantize=quantize or ("none",), tflite_size=_parse_size(tflite_size),
                        eval_dirs=eval_dirs, command=shlex.join(["keras-skel", *sys.argv[1:]]), tta=tta,
                        notes=notes)
    click.echo(f"SavedModel: {result.saved_model}")
    for path in result.tflite:
        click.echo(f"TFLite: {path} ({path.stat().st_size / 1e6:.2f} MB)")


@cli.command()
@click.option("--models", "models_dir", type=click.Path(exists=True, file_okay=False), default="saved_models",
              show_default=True, help="Folder of exported models (NAME/VERSION/).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (loopback by default).")
@click.option("--port", type=click.IntRange(0, 65535), default=8501, show_default=True, help="Port.")
@click.option("--max-body-mb", type=click.FloatRange(min=0.001), default=32.0, show_default=True,
              help="Largest request body accepted (larger: HTTP 413).")
@click.option("--threads", type=click.IntRange(min=1), default=4, show_default=True,
              help="Requests handled concurrently.")
def serve(models_dir, host, port, max_body_mb, threads):
    """Serve exported models over TF Serving's REST API (for machines without TF Serving).

    Endpoints: GET /v1/models/NAME, GET /v1/models/NAME/metadata,
    POST /v1/models/NAME[/versions/V|/labels/L]:predict (instances or inputs; {"b64": ...}
    for PNG bytes).

    \b
    Example:
      keras-skel serve --models saved_models --port 8501
      curl localhost:8501/v1/models/unet_shapes
    """
    _quiet_tensorflow()
    from keras_skel.serving.server import serve as run_server

    run_server(models_dir, host=host, port=port, max_body_bytes=int(max_body_mb * 1e6), threads=threads)


@cli.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="demo", show_default=True,
              help="Folder for the test data, the reports and the picture.")
@click.option("--model", default=DEFAULT_MODEL, show_default=True,
              help="Model compared with classical (default: the shipped U-Net).")
@click.option("--count", type=click.IntRange(min=1), default=16, show_default=True, help="Held-out test images.")
@click.option("--size", type=click.IntRange(min=32), default=256, show_default=True, help="Their side length.")
@click.option("--train-minutes", type=click.FloatRange(min=0.1), default=None,
              help="Train the unet_shapes recipe this long first and use that model instead.")
def demo(out_dir, model, count, size, train_minutes):
    """The main job on built-in defaults: skeletonize held-out noisy synthetic shapes with the
    shipped U-Net and with the classical baseline, score both and write a comparison picture
    (seconds). With --train-minutes, train a model first (the whole training path).

    \b
    Example:
      keras-skel demo --out demo
      keras-skel demo --out demo-trained --train-minutes 2
    """
    _quiet_tensorflow()
    from keras_skel.demo import run_demo

    click.echo(run_demo(out_dir, model=model, count=count, size=size, train_minutes=train_minutes))


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="keras-skel")


if __name__ == "__main__":
    main()
