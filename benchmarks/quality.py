"""Highlight judgment on a planted-truth corpus: does the reel hold the moments an editor would pick?

    python -m benchmarks.quality [--budgets 30 60] [--keep DIR] [--paraphrased] [--words-only] [--variant N]

Generates a deterministic corpus (espeak-ng speech, ffmpeg lavfi pictures, seeded noise): four short "raw
footage" videos of one event, each with on-theme sentences, off-topic small talk, silences, a test card with
a steady tone and one loud applause burst. Runs the pure analysis and planning functions (not the Prefect
flow), with and without the speech model, and scores the reel against evenly spaced, random and best-possible
cuts on the same budget. With the `judge` extra installed, the speech-model run is planned twice: by theme
terms alone and by meaning too; `--paraphrased` says each video's last theme sentence without a theme term.
Needs `espeak-ng`: installed with apt-get when missing and run as root, else the
script says so and exits 2.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import wave
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

RATE = 22050
BREATH = 0.3  # a clip may hold this much pause around a planted moment and still count it as highlight
THEME = [  # three per video, all different, sharing the event's words
    ["The robot competition final starts with the teams bringing their robots to the arena.",
     "Our team built a climbing robot for the competition this year.",
     "In the final round our robot climbed the wall in twelve seconds."],
    ["The judges score every robot on speed and on how well it climbs.",
     "The arena was full when the robots lined up for the final.",
     "The winning team thanked the judges and the other teams at the competition."],
    ["Every robot in the final had to carry a ball up the wall.",
     "After the competition the teams showed their robots to the crowd.",
     "Our robot lost a wheel in the first round of the competition but the team fixed it."],
    ["The crowd cheered when the smallest robot reached the top of the wall.",
     "Next year the competition wants more teams and a longer final.",
     "The judges gave a special prize to the team with the fastest robot."],
]
# --paraphrased: each video's last theme sentence said without one theme term (nor one shared with another
# video's), the case only a judge of meaning can place; written before any run, checked in tests
PARAPHRASED = ["Engineers tuned the motors all night before the contest began.",
               "The referees held up their stopwatches as the gadgets raced upward.",
               "Students soldered the last circuit board minutes before the match kicked off.",
               "Spectators stood and shouted as the tiniest contraption hauled itself up."]
SMALL_TALK = [
    ["Did anyone find a place to park the car this morning?", "I still need to buy milk on the way home."],
    ["My sister is moving to a new flat next week.", "Is it going to rain later, do you think?"],
    ["I forgot my umbrella on the bus again.", "The coffee machine downstairs is broken."],
    ["We should book the dentist before the holidays.", "My phone battery is almost empty."],
]


def ensure_espeak() -> str | None:
    """espeak-ng's path, installing it with apt-get first when it is missing and we may (root, apt-get
    present); None when it cannot be had, so callers can skip with a reason."""
    found = shutil.which("espeak-ng")
    if found or not shutil.which("apt-get") or os.geteuid() != 0:
        return found
    for args in (["apt-get", "install", "-y", "-q", "espeak-ng"], ["apt-get", "update", "-q"],
                 ["apt-get", "install", "-y", "-q", "espeak-ng"]):
        try:
            done = subprocess.run(args, capture_output=True, timeout=600,
                                  env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        except (OSError, subprocess.TimeoutExpired):
            return None
        if done.returncode == 0 and shutil.which("espeak-ng"):
            return shutil.which("espeak-ng")
    return shutil.which("espeak-ng")


@dataclass
class Planted:
    video: int
    kind: str  # theme, talk, applause, card, silence
    start: float
    end: float
    text: str = ""

    @property
    def highlight(self) -> bool:
        return self.kind in ("theme", "applause")


@dataclass
class Corpus:
    videos: list[Path]
    planted: list[Planted] = field(default_factory=list)
    durations: list[float] = field(default_factory=list)


def _speak(text: str, folder: Path, voice: str = "en-us", speed: int = 165) -> np.ndarray:
    out = folder / "say.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(out), text], check=True,
                   capture_output=True)
    with wave.open(str(out)) as handle:
        assert handle.getframerate() == RATE, handle.getframerate()
        samples = np.frombuffer(handle.readframes(handle.getnframes()), dtype=np.int16).astype(np.float32) / 32768
    loud = np.flatnonzero(np.abs(samples) > 0.01)
    return samples[loud[0]: loud[-1] + 1] * 0.8 if len(loud) else samples


def _applause(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Clapping-like noise: dense random claps (short noise bursts) over a noise bed, louder than speech."""
    n = int(seconds * RATE)
    out = rng.normal(0, 0.12, n).astype(np.float32)
    for _ in range(int(seconds * 40)):
        at = int(rng.integers(0, n - 400))
        out[at:at + 400] += rng.normal(0, 0.5, 400).astype(np.float32) * np.hanning(400).astype(np.float32)
    ramp = np.minimum(1, np.minimum(np.arange(n), n - np.arange(n)) / (0.15 * RATE)).astype(np.float32)
    return np.clip(out * ramp, -0.99, 0.99)


def _variant_plan(theme: list[str], talk: list[str], rng: random.Random) -> list[tuple[str, float, str]]:
    """A shuffled video of the same pieces: the card first, then theme, talk and the applause burst in a
    random order, each followed by a pause of random length; applause of random length."""
    body = [("theme", 0.0, t) for t in theme] + [("talk", 0.0, t) for t in talk] + \
        [("applause", round(rng.uniform(2.0, 6.0), 2), "")]
    rng.shuffle(body)
    plan = [("card", round(rng.uniform(2.0, 4.0), 2), ""), ("silence", round(rng.uniform(0.5, 1.5), 2), "")]
    for piece in body:
        plan += [piece, ("silence", round(rng.uniform(0.35, 2.0), 2), "")]
    return plan


def make_corpus(folder: Path, ffmpeg: str, videos: int = 4, paraphrased: bool = False,
                variant: int | None = None) -> Corpus:
    """Up to four videos of one event; the planted truth is the exact place of every piece. A `variant`
    (a seed) shuffles each video's pieces, pause and applause lengths, voice and speaking rate: material
    the rules were not written against."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(10 if variant is None else 1000 + variant)
    shuffle = random.Random(variant)
    corpus = Corpus(videos=[])
    for v in range(videos):
        theme = THEME[v][:2] + [PARAPHRASED[v]] if paraphrased else THEME[v]
        talk = SMALL_TALK[v]
        plan = [("card", 3.0, ""), ("silence", 1.0, ""), ("theme", 0, theme[0]), ("silence", 1.2, ""),
                ("talk", 0, talk[0]), ("silence", 1.5, ""), ("theme", 0, theme[1]), ("silence", 0.6, ""),
                ("applause", 3.0, ""), ("silence", 0.8, ""), ("talk", 0, talk[1]), ("silence", 1.0, ""),
                ("theme", 0, theme[2]), ("silence", 1.5, "")]
        voice, speed = "en-us", 165
        if variant is not None:
            plan = _variant_plan(theme, talk, shuffle)
            voice, speed = shuffle.choice(["en-us", "en-gb", "en-us+m3", "en-gb-x-rp+f2"]), shuffle.randint(140, 190)
        pieces, t = [], 0.0
        for kind, seconds, text in plan:
            if kind in ("theme", "talk"):
                audio = _speak(text, folder, voice, speed)
            elif kind == "applause":
                audio = _applause(seconds, rng)
            elif kind == "card":
                n = int(seconds * RATE)
                audio = (0.25 * np.sin(2 * np.pi * 1000 * np.arange(n) / RATE)).astype(np.float32)
            else:
                audio = np.zeros(int(seconds * RATE), dtype=np.float32)
            length = len(audio) / RATE
            corpus.planted.append(Planted(v, kind, round(t, 3), round(t + length, 3), text))
            pieces.append(audio)
            t += length
        wav = folder / f"audio{v}.wav"
        with wave.open(str(wav), "w") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(RATE)
            out.writeframes((np.concatenate(pieces) * 32767).astype(np.int16).tobytes())
        # the picture: bars during the test card, a moving test pattern elsewhere
        card = next(p for p in corpus.planted if p.video == v and p.kind == "card")
        video = folder / f"event_{v}.mp4"
        subprocess.run([ffmpeg, "-v", "error", "-y",
                        "-f", "lavfi", "-i", f"smptebars=s=192x108:r=10:d={card.end}",
                        "-f", "lavfi", "-i", f"testsrc2=s=192x108:r=10:d={t - card.end:.3f}",
                        "-i", str(wav), "-filter_complex", "[0:v][1:v]concat=n=2:v=1:a=0[v]",
                        "-map", "[v]", "-map", "2:a", "-c:v", "libx264", "-preset", "ultrafast",
                        "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "96k", "-shortest", str(video)],
                       check=True)
        wav.unlink()
        corpus.videos.append(video)
        corpus.durations.append(t)
    (folder / "say.wav").unlink(missing_ok=True)
    return corpus


# ---------------------------------------------------------------- scoring

def _overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


def score(cuts: list[tuple[int, float, float]], corpus: Corpus, budget: float) -> dict:
    """Precision, recall against the best possible, events, clips ending inside a sentence, filler."""
    planted = corpus.planted
    reel = sum(e - s for _, s, e in cuts) or 1e-9
    good = 0.0
    for v, s, e in cuts:  # seconds inside a highlight (with its breathing room), counted once
        spans = sorted((p.start - BREATH, p.end + BREATH) for p in planted if p.video == v and p.highlight)
        covered, cursor = 0.0, s
        for a, b in spans:
            a, b = max(a, cursor), min(b, e)
            if b > a:
                covered += b - a
                cursor = b
        good += covered
    moments = [p for p in planted if p.highlight]

    def inside(p: Planted) -> bool:
        return sum(_overlap(s, e, p.start, p.end) for v, s, e in cuts if v == p.video) >= 0.5 * (p.end - p.start)

    found = [p for p in moments if inside(p)]
    best = 0  # as many whole planted moments as the budget can hold
    for length in sorted(p.end - p.start for p in moments):
        if budget - length < 0:
            break
        budget -= length
        best += 1
    spoken = [p for p in planted if p.kind in ("theme", "talk")]
    mid = sum(1 for v, s, e in cuts if any(p.video == v and (p.start + 0.05 < s < p.end - 0.05 or
                                                            p.start + 0.05 < e < p.end - 0.05) for p in spoken))
    filler = sum(_overlap(s, e, p.start, p.end) for v, s, e in cuts for p in planted
                 if p.video == v and p.kind in ("talk", "card"))
    silence = sum(_overlap(s, e, p.start, p.end) for v, s, e in cuts for p in planted
                  if p.video == v and p.kind == "silence")
    return {"reel": reel, "precision": good / reel, "recall": len(found) / len(moments),
            "best": best / len(moments), "events": sum(1 for p in found if p.kind == "applause"),
            "clips": len(cuts), "mid": mid, "filler": filler, "silence": silence,
            "sources": len({v for v, _, _ in cuts})}


def evenly_spaced(corpus: Corpus, budget: float, clip: float = 3.0) -> list[tuple[int, float, float]]:
    n = max(1, int(budget // clip))
    total = sum(corpus.durations)
    cuts = []
    for k in range(n):
        t = (k + 0.5) * total / n
        v = 0
        while t > corpus.durations[v]:
            t -= corpus.durations[v]
            v += 1
        start = max(0.0, min(t - clip / 2, corpus.durations[v] - clip))
        cuts.append((v, start, start + clip))
    return cuts


def random_cuts(corpus: Corpus, budget: float, seed: int = 7, clip: float = 3.0) -> list[tuple[int, float, float]]:
    rng = random.Random(seed)
    cuts: list[tuple[int, float, float]] = []
    while sum(e - s for _, s, e in cuts) + clip <= budget:
        v = rng.randrange(len(corpus.videos))
        s = rng.uniform(0, corpus.durations[v] - clip)
        if all(o != v or e <= s or s + clip <= b for o, b, e in cuts):
            cuts.append((v, s, s + clip))
    return cuts


def best_possible(corpus: Corpus, budget: float) -> list[tuple[int, float, float]]:
    """An editor with the planted truth: every event first, then on-theme sentences, shortest first, whole."""
    order = sorted((p for p in corpus.planted if p.highlight), key=lambda p: (p.kind != "applause", p.end - p.start))
    cuts, used = [], 0.0
    for p in order:
        if used + p.end - p.start <= budget:
            cuts.append((p.video, p.start, p.end))
            used += p.end - p.start
    return cuts


# ---------------------------------------------------------------- auto-clip, without the flow

def analyse(corpus: Corpus, work: Path, speech: bool):
    from autoclip.analysis import analyze
    from autoclip.config import get_settings
    from autoclip.sources import ingest

    os.environ["AUTOCLIP_WHISPER_MODEL"] = "auto" if speech else "none"
    get_settings.cache_clear()
    settings = get_settings()
    pairs, seconds = [], 0.0
    for i, path in enumerate(corpus.videos):
        video = ingest(str(path), i, work / f"in{i}-{int(speech)}", settings)
        started = time.perf_counter()
        pairs.append((video, analyze(video, work / f"scratch{i}", settings)))
        seconds += time.perf_counter() - started
    return pairs, seconds


def autoclip_cuts(pairs, budget: float,
                  meaning: bool = False) -> tuple[list[tuple[int, float, float]], list[str], float]:
    from autoclip.planning.heuristic import HeuristicPlanner
    from autoclip.planning.segments import digest
    from autoclip.planning.two_pass import decide_theme, plan_edit

    started = time.perf_counter()
    planner = HeuristicPlanner(meaning=meaning)
    theme, info = decide_theme(planner, [digest(v, a) for v, a in pairs])
    plan = plan_edit(pairs, theme, info, planner, target=budget, min_clip=1.5, max_clip=8.0)
    return ([(c.video_index, c.start, c.end) for c in plan.clips], [c.reason for c in plan.clips],
            time.perf_counter() - started)


def _row(name: str, budget: float, r: dict) -> str:
    return (f"| {name} | {budget:.0f} | {r['reel']:.1f} | {r['precision']:.2f} | {r['recall']:.2f} "
            f"({r['best']:.2f}) | {r['events']} of 4 | {r['mid']} of {r['clips']} | {r['filler']:.1f} | "
            f"{r['silence']:.1f} | {r['sources']} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", type=float, nargs="+", default=[30.0, 60.0])
    parser.add_argument("--keep", type=Path, help="keep the corpus in this folder")
    parser.add_argument("--no-speech-model", action="store_true", help="only the run without Whisper")
    parser.add_argument("--paraphrased", action="store_true",
                        help="each video's last theme sentence shares no theme term (see PARAPHRASED)")
    parser.add_argument("--variant", type=int, help="a seed: shuffle the corpus (order, pauses, applause "
                        "length, voice, rate) to measure on material the rules were not written against")
    parser.add_argument("--words-only", action="store_true",
                        help="judge talk by theme terms only, even with the judge extra installed")
    args = parser.parse_args(argv)
    if not ensure_espeak():
        print("benchmarks.quality needs espeak-ng (apt-get install espeak-ng)", file=sys.stderr)
        return 2
    from autoclip.media.ffmpeg import ffmpeg_binary

    folder = Path(tempfile.mkdtemp(prefix="autoclip-quality-"))
    try:
        corpus = make_corpus(args.keep or folder / "corpus", ffmpeg_binary(), paraphrased=args.paraphrased,
                             variant=args.variant)
        print(f"corpus: {len(corpus.videos)} videos, {sum(corpus.durations):.1f} s, "
              f"{sum(1 for p in corpus.planted if p.highlight)} planted moments "
              f"({sum(p.end - p.start for p in corpus.planted if p.highlight):.1f} s)")
        rows = ["| cuts | budget s | reel s | precision | recall (best possible) | planted events in | "
                "clips ending inside a sentence | filler s | silence s | sources |",
                "|---|---|---|---|---|---|---|---|---|---|"]
        modes = [False] if args.no_speech_model else [True, False]
        from autoclip.planning import meaning

        # words alone, and words and meaning when the `judge` extra is installed (unless --words-only);
        # without a speech model there are no words to judge, so that run is planned once
        judges = [False] + ([True] if meaning.available() and not args.words_only else [])
        runs = {}
        for speech in modes:
            pairs, seconds = analyse(corpus, folder / "work", speech)
            engine = pairs[0][1].analysers.get("speech", "")
            runs[speech] = (pairs, seconds, engine)
            print(f"analysis ({engine}): {seconds:.1f} s for 4 videos")
        for budget in args.budgets:
            for speech, by_meaning in [(s, m) for s in modes for m in (judges if s else [False])]:
                pairs, _, engine = runs[speech]
                cuts, reasons, planning = autoclip_cuts(pairs, budget, by_meaning)
                label = "auto-clip, speech model" if speech and "whisper" in engine else "auto-clip, no speech model"
                label += ", judged by meaning too" if by_meaning else ""
                rows.append(_row(label, budget, score(cuts, corpus, budget)))
                print(f"planning {label} at {budget:.0f} s: {planning * 1000:.0f} ms")
                for cut, reason in zip(cuts, reasons):
                    print(f"   v{cut[0]} {cut[1]:6.2f}-{cut[2]:6.2f}  {reason}")
            rows.append(_row("evenly spaced 3 s clips", budget, score(evenly_spaced(corpus, budget), corpus, budget)))
            rows.append(_row("random 3 s clips", budget, score(random_cuts(corpus, budget), corpus, budget)))
            rows.append(_row("best possible", budget, score(best_possible(corpus, budget), corpus, budget)))
        print("\n".join(rows))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
