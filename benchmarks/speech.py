"""Offline speech accuracy and cost: character/word error rates, real-time factor and peak memory of
autoclip's WhisperRecognizer on real Mandarin, mixed Mandarin/English and English speech.

    python benchmarks/speech.py [--media DIR]     # the table (3 runs a row, 2-4 minutes on 2 cores)
    python benchmarks/speech.py --long-minutes 20 # also a long Chinese input, for memory

Each row is the median (by CPU seconds) of --repeats runs: the 2-core machine is shared, and a busy
neighbour inflates single runs several times over. Inputs: a Chinese talk and a mixed Chinese/English
clip made offline by tests/mandarin.py (its voice fetched and checked on first use; rows left out without
it), `shared/media/autocut_test002_zh_en.mov` beside the repository (real Mandarin, then English, with
reference subtitles; its first 5 s are the Chinese clip; rows left out without it) and the shipped
English sample. Each
transcription runs in its own process, so its peak RSS (VmHWM) is the recogniser's alone; the real-time
factor is transcription wall time over audio length (and CPU seconds over audio length, which a busy
machine does not inflate), the model load excluded (reported apart; with `auto`
only the base model is preloaded, and the switch to tiny.en for English speech counts in the factor).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SHARED = ROOT.parent / "shared" / "media"
SAMPLE = ROOT / "samples" / "autoeditor_example_speech_en.mp4"
# What the shipped sample says (auto-editor's example; both Whisper models hear the same words).
SAMPLE_TEXT = ("Hello. This is an example video for your convenience and pleasure. You are allowed to use this "
               "voice for any purpose including commercial uses. On the bottom right you can see the time. "
               "When the time reaches 40 seconds, I will say banana. Banana.")


def tokens(text: str) -> list[str]:
    """Units errors are counted in: each CJK character, each Latin word (lower-cased), no punctuation."""
    from autoclip.text import chinese_script, is_cjk

    text = chinese_script(text, "simplified")
    out: list[str] = []
    for piece in re.findall(r"[^\W_]+", text):
        word = ""
        for char in piece:
            if is_cjk(char):
                out += [word.lower()] if word else []
                out.append(char)
                word = ""
            elif unicodedata.category(char)[0] in "LN":
                word += char
        out += [word.lower()] if word else []
    return out


def edit_distance(a: list[str], b: list[str]) -> int:
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        previous, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (x != y))
    return row[-1]


def error_rates(reference: str, hypothesis: str) -> dict[str, float | None]:
    """CER over CJK characters, WER over Latin words, and MER over both (mixed error rate)."""
    from autoclip.text import is_cjk

    ref, hyp = tokens(reference), tokens(hypothesis)

    def rate(keep) -> float | None:
        r = [t for t in ref if keep(t)]
        return edit_distance(r, [t for t in hyp if keep(t)]) / len(r) if r else None

    return {"cer": rate(lambda t: is_cjk(t[0])), "wer": rate(lambda t: not is_cjk(t[0])),
            "mer": rate(lambda t: True)}


def reference_cues(srt: Path) -> list[tuple[float, float, str]]:
    cues = []
    for block in srt.read_text(encoding="utf-8").strip().split("\n\n"):
        lines = block.strip().splitlines()
        stamps = re.findall(r"(\d+):(\d+):(\d+),(\d+)", lines[1])
        a, b = [int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000 for h, m, s, ms in stamps]
        cues.append((a, b, " ".join(lines[2:])))
    return cues


def _wav(ffmpeg: str, source: Path, out: Path, start: float = 0.0, seconds: float | None = None) -> Path:
    cut = ["-ss", str(start)] + (["-t", str(seconds)] if seconds else [])
    subprocess.run([ffmpeg, "-hide_banner", "-loglevel", "error", "-y", "-i", str(source), *cut, "-vn", "-ac",
                    "1", "-ar", "16000", "-c:a", "pcm_s16le", str(out)], check=True)
    return out


def _looped(ffmpeg: str, wav: Path, out: Path, minutes: float) -> Path:
    """A long talk: the clip and a second of silence, over and over."""
    subprocess.run([ffmpeg, "-hide_banner", "-loglevel", "error", "-y", "-i", str(wav), "-af",
                    "apad=pad_dur=1", "-c:a", "pcm_s16le", str(out.with_suffix(".unit.wav"))], check=True)
    subprocess.run([ffmpeg, "-hide_banner", "-loglevel", "error", "-y", "-stream_loop", "-1", "-i",
                    str(out.with_suffix(".unit.wav")), "-t", str(minutes * 60), "-c:a", "pcm_s16le", str(out)],
                   check=True)
    return out


def one(wav: str, model: str, language: str, cache_dir: str) -> None:
    """Worker: load the model(s) the spec may use, transcribe, print JSON (text, times, peak RSS)."""
    from autoclip.media.extract import wav_duration
    from autoclip.providers import whisper_models
    from autoclip.providers.whisper import WhisperRecognizer, _loaded, model_info

    started = time.perf_counter()
    names = ["base"] if model == "auto" else [model]  # auto listens with base first (tiny.en loads in ~0.3 s)
    for name in names:
        if name == "base" and whisper_models.base_installed() or name == "tiny.en" and whisper_models.tiny_en():
            _loaded(model_info(name, Path(cache_dir)), "int8")
    load = time.perf_counter() - started
    recognizer = WhisperRecognizer(model, cache_dir=Path(cache_dir))
    started, cpu0 = time.perf_counter(), time.process_time()
    transcript = recognizer.transcribe(Path(wav), language or None)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu0
    with open("/proc/self/status") as status:
        peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024
    print(json.dumps({"text": " ".join(s.text for s in transcript.sentences), "wall": wall, "cpu": cpu,
                      "load": load, "audio": wav_duration(Path(wav)), "peak_mb": peak,
                      "engine": transcript.engine, "language": transcript.language}, ensure_ascii=False))


def measure(wav: Path, model: str, language: str, cache_dir: Path) -> dict:
    out = subprocess.run([sys.executable, __file__, "--one", str(wav), model, language, str(cache_dir)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def generated_cases(ffmpeg: str, work: Path) -> list[tuple]:
    """The Chinese talk and the mixed clip made by tests/mandarin.py (its voice fetched on first use)."""
    from tests import mandarin

    try:
        voice = mandarin.Voice(mandarin.voice_files())
    except mandarin.VoiceUnavailable as exc:
        print(f"generated Mandarin rows left out: {exc}", file=sys.stderr)
        return []
    talk = mandarin.speech([("zh", s) for s in mandarin.TALK], work / "gen_zh.24k.wav", voice)
    mixed = mandarin.speech(mandarin.MIXED, work / "gen_mixed.24k.wav", voice)
    _wav(ffmpeg, work / "gen_zh.24k.wav", work / "gen_zh.wav")
    _wav(ffmpeg, work / "gen_mixed.24k.wav", work / "gen_mixed.wav")
    return [
        (f"generated Chinese talk ({talk[-1][1] + mandarin.LEAD:.0f} s, {len(talk)} sentences)",
         work / "gen_zh.wav", " ".join(s[3] for s in talk), "auto", ""),
        (f"generated mixed zh/en ({mixed[-1][1] + mandarin.LEAD:.0f} s, {len(mixed)} sentences)",
         work / "gen_mixed.wav", " ".join(s[3] for s in mixed), "auto", ""),
    ]


def shared_cases(ffmpeg: str, mixed: Path, work: Path) -> list[tuple]:
    """The real recording from the shared media: its Chinese first sentence alone, then all of it."""
    if not mixed.exists():
        return []
    cues = reference_cues(mixed.with_name("autocut_test002_zh_en.reference.srt"))
    return [
        ("Chinese talk (zh, 5 s)", _wav(ffmpeg, mixed, work / "zh.wav", 0, cues[0][1]), cues[0][2], "auto", ""),
        ("Chinese talk, AUTOCLIP_LANGUAGE=zh", work / "zh.wav", cues[0][2], "auto", "zh"),
        ("mixed zh then en (10 s)", _wav(ffmpeg, mixed, work / "mixed.wav"), " ".join(c[2] for c in cues),
         "auto", ""),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--long-minutes", type=float, default=0, help="also a looped Chinese talk this long")
    parser.add_argument("--repeats", type=int, default=3, help="runs per row; the median by CPU is shown")
    parser.add_argument("--media", type=Path, default=SHARED, help="folder with autocut_test002_zh_en.mov")
    parser.add_argument("--one", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        return one(*args.one)
    from autoclip.media.ffmpeg import ffmpeg_binary

    ffmpeg = ffmpeg_binary()
    mixed = args.media / "autocut_test002_zh_en.mov"
    if not mixed.exists():
        print(f"{mixed} not found: its rows are left out (the shared clip comes from the workplace's "
              "shared/media folder, --media)", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="autoclip-speech-") as scratch:
        work = Path(scratch)
        cache = Path.home() / ".cache" / "autoclip"
        cases = generated_cases(ffmpeg, work) + shared_cases(ffmpeg, mixed, work) + [
            ("English sample (42 s, 16 s speech)", _wav(ffmpeg, SAMPLE, work / "en.wav"), SAMPLE_TEXT, "auto", ""),
            ("English sample, base model forced", work / "en.wav", SAMPLE_TEXT, "base", ""),
        ]
        talk = next((w for w in (work / "zh.wav", work / "gen_zh.wav") if w.exists()), None)
        if args.long_minutes and talk:
            cases.append((f"Chinese talk ({talk.stem}) looped to {args.long_minutes:g} min",
                          _looped(ffmpeg, talk, work / "long.wav", args.long_minutes), None, "auto", ""))
        print("| input | model used | CER (zh chars) | WER (en words) | real-time factor, wall (CPU) | peak RSS "
              "| output |")
        print("|---|---|---|---|---|---|---|")
        for name, wav, reference, model, language in cases:
            runs = sorted((measure(wav, model, language, cache) for _ in range(1 if reference is None
                                                                             else args.repeats)),
                          key=lambda run: run["cpu"])
            got = runs[len(runs) // 2]
            rates = error_rates(reference, got["text"]) if reference else {"cer": None, "wer": None}
            shown = got["text"] if len(got["text"]) < 70 else got["text"][:67] + "..."
            print(f"| {name} | {got['engine'].split(':')[-1]} ({got['language']}) | {_pct(rates['cer'])} | "
                  f"{_pct(rates['wer'])} | {got['wall'] / got['audio']:.2f} ({got['cpu'] / got['audio']:.2f}): "
                  f"{got['wall']:.1f} s wall, {got['cpu']:.1f} s CPU for {got['audio']:.0f} s; load "
                  f"{got['load']:.1f} s | {got['peak_mb']:.0f} MB | {shown} |", flush=True)


if __name__ == "__main__":
    main()
