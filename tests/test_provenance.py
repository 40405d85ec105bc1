"""Provenance (issue 15): every facecast video carries an invisible watermark that survives the
usual re-uploads, its container says it is synthetic, a C2PA manifest can be signed in, and
`facecast verify` (CLI and HTTP) finds all of it; unmarked material is not flagged."""
import datetime
import json
import subprocess
import sys

import cv2
import matplotlib.cbook
import numpy as np
import pytest
import skimage.data

import facecast
from facecast.audio.io import save_wav
from facecast.evaluation.retrack import psnr
from facecast.motion.presets import preset_motion
from facecast.provenance import metadata
from facecast.provenance.attacks import ATTACKS, read_frames, transcode
from facecast.provenance.verify import verify
from facecast.provenance.watermark import Payload, Watermark, detect, strength_map


def run_cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "facecast", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def hopper512(hopper_path, tracker):
    return facecast.build_rig(hopper_path, 512, tracker=tracker)


@pytest.fixture(scope="module")
def speech(tmp_path_factory, tts_speech):
    p = tmp_path_factory.mktemp("speech") / "speech.wav"
    save_wav(p, tts_speech[0][:int(2.4 * 16000)], 16000)
    return p


@pytest.fixture(scope="module")
def marked(tmp_path_factory, hopper512, speech):
    """A 2.4 s render of Grace Hopper at 512 px, as `facecast render` writes it."""
    out = tmp_path_factory.mktemp("marked") / "marked.mp4"
    res = facecast.Animator(hopper512.photo, rig=hopper512).render(speech, out)
    return out, res.video_id


def test_payload_round_trip_and_check_bits():
    p = Payload.new()
    assert p.facecast_version == facecast.__version__ and len(p.video_id) == 8
    assert Payload.from_symbols(p.to_symbols()) == p
    wrong = p.to_symbols()
    wrong[2] ^= 1
    assert Payload.from_symbols(wrong) is None


def test_rendered_mp4_carries_the_mark_its_payload_and_tags(marked):
    path, video_id = marked
    report = verify(path)
    w = report["watermark"]
    assert report["found"] and w["confidence"] > 0.999999
    assert w["payload"] == {"format_version": 1, "facecast_version": facecast.__version__, "video_id": video_id}
    assert w["windows"]["found"] == w["windows"]["read"] == 1
    assert report["metadata"] == {"synthetic": True, "generator": "facecast", "version": facecast.__version__,
                                  "video_id": video_id, "comment": report["metadata"]["comment"]}
    assert "Synthetic video" in report["metadata"]["comment"]
    assert report["c2pa"]["present"] is False or report["c2pa"]["present"] is None


@pytest.mark.parametrize("attack", [a for a in ATTACKS if a != "as rendered"])
def test_mark_survives(attack, marked, tmp_path):
    """H.264 at CRF 30, 50 % downscale, 10 % off each side, 25 -> 30 fps: still found, and the
    payload, when it is read, is this video's."""
    path, video_id = marked
    out = tmp_path / "attacked.mp4"
    transcode(path, out, **ATTACKS[attack])
    report = verify(out)
    assert report["found"], report["watermark"]
    pl = report["watermark"]["payload"]
    assert pl is None or pl["video_id"] == video_id
    if "crop" in attack or "fps" in attack:
        assert pl is not None and pl["video_id"] == video_id
    if "downscale" in attack:
        assert report["watermark"]["scale"] == pytest.approx(0.5, abs=0.01)


def test_each_render_and_stream_gets_its_own_id(hopper512, speech, tmp_path):
    anim = facecast.Animator(hopper512.photo, rig=hopper512)
    a = anim.animate(preset_motion("talk", 1.0, 25), tmp_path / "a.mp4")
    b = anim.animate(preset_motion("talk", 1.0, 25), tmp_path / "b.mp4")
    s1, s2 = anim.stream(), anim.stream()
    assert len({a.video_id, b.video_id, s1.mark.video_id, s2.mark.video_id}) == 4


def test_live_stream_frames_are_marked_after_jpeg(hopper512, tts_speech):
    """The live session's path: Animator.stream frames, sent as JPEG at the default quality (80)."""
    stream = facecast.Animator(hopper512.photo, rig=hopper512).stream(facecast.Controls(seed=2))
    x = tts_speech[0][:int(2.0 * 16000)]
    frames = []
    for i in range(0, len(x), 320):
        frames += [rgb for _, rgb in stream.push(x[i:i + 320])]
    frames += [rgb for _, rgb in stream.flush()]
    jpgs = [cv2.imdecode(cv2.imencode(".jpg", f[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 80])[1], 1)[:, :, ::-1]
            for f in frames]
    d = detect(jpgs)
    assert d.found and d.payload is not None and d.payload.video_id == stream.mark.video_id


@pytest.mark.parametrize("which", ["hopper", "astronaut"])
def test_invisible_psnr_and_flat_areas(which, hopper512, astronaut_rig):
    rig = hopper512 if which == "hopper" else astronaut_rig
    marked_anim = facecast.Animator(rig.photo, rig=rig)
    plain = facecast.Animator(rig.photo, rig=rig, watermark=False)
    for m in list(preset_motion("talk", 1.0, 25))[::6]:
        assert psnr(marked_anim.frame(m), plain.frame(m)) >= 42.0
    # a flat patch (a plain backdrop) gets (almost) nothing: at most one level, on few pixels
    img = plain.frame(preset_motion("talk", 0.2, 25)[0]).copy()
    img[:160, :160] = (92, 130, 180)
    diff = np.abs(Watermark().apply(img).astype(int) - img)[20:140, 20:140]
    assert diff.max() <= 1 and (diff > 0).mean() < 0.05
    assert strength_map(img)[20:140, 20:140].max() < 0.05


def test_no_false_positives_on_unmarked_material(hopper512, speech, tmp_path):
    """Unmarked renders (every 2 s window and every tenth frame alone) and photos of all kinds."""
    out = tmp_path / "plain.mp4"
    facecast.Animator(hopper512.photo, rig=hopper512, watermark=False).render(speech, out)
    report = verify(out)
    assert not report["found"] and report["watermark"]["windows"]["found"] == 0
    frames, _ = read_frames(out)
    photos = [getattr(skimage.data, n)() for n in ("astronaut", "camera", "coffee", "chelsea", "rocket", "coins",
                                                   "immunohistochemistry", "brick", "grass", "page")]
    photos.append(cv2.imread(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))[:, :, ::-1])
    for im in frames[::10] + photos:
        d = detect(im)
        assert not d.found, d


def test_verify_cli_exit_codes_and_json(marked, tmp_path):
    path, video_id = marked
    r = run_cli("verify", path, "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["watermark"]["payload"]["video_id"] == video_id
    r = run_cli("verify", path)
    assert r.returncode == 0 and "FOUND" in r.stdout and video_id in r.stdout
    # an unmarked photo: 1; a marked frame saved as PNG: 0
    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), skimage.data.coffee()[:, :, ::-1])
    r = run_cli("verify", photo)
    assert r.returncode == 1 and "no facecast watermark" in r.stdout
    frame = tmp_path / "frame.png"
    cv2.imwrite(str(frame), read_frames(path)[0][5][:, :, ::-1])
    assert run_cli("verify", frame).returncode == 0
    # bad input: 2, one line
    (tmp_path / "notes.txt").write_text("not a video")
    for bad in (tmp_path / "notes.txt", tmp_path / "missing.mp4", tmp_path):
        r = run_cli("verify", bad)
        assert r.returncode == 2 and r.stderr.startswith("facecast: error: ") and len(r.stderr.splitlines()) == 1


def test_no_watermark_flag(hopper_path, tmp_path):
    out = tmp_path / "plain.mp4"
    r = run_cli("animate", hopper_path, "--preset", "talk", "--seconds", 2, "--size", 256, "-o", out, "--no-watermark")
    assert r.returncode == 0, r.stderr
    assert len([ln for ln in r.stderr.splitlines() if "--no-watermark" in ln]) == 1
    assert run_cli("verify", out).returncode == 1
    tags = metadata.read_tags(out)
    assert tags["synthetic"] and tags["video_id"] is None       # the container still says synthetic
    # the live server and the HTTP API have no such switch
    assert run_cli("serve", "--no-watermark").returncode == 2


@pytest.mark.parametrize("ext", [".mp4", ".mov", ".webm", ".mkv"])
def test_container_says_synthetic(ext, hopper512, tmp_path):
    out = tmp_path / f"clip{ext}"
    res = facecast.Animator(hopper512.photo, rig=hopper512).animate(preset_motion("nod", 0.4, 25), out)
    tags = metadata.read_tags(out)
    assert tags["synthetic"] is True and tags["generator"] == "facecast" and tags["video_id"] == res.video_id
    assert "synthetic" in tags["comment"].lower()


def _self_signed(folder):
    """A throwaway CA and a signing certificate under it (EC P-256), made with `cryptography`."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    now = datetime.datetime.now(datetime.timezone.utc)

    def name(cn):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                          x509.NameAttribute(NameOID.ORGANIZATION_NAME, "facecast tests")])

    def usage(sign, ca):
        return x509.KeyUsage(digital_signature=sign, content_commitment=False, key_encipherment=False,
                             data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
                             encipher_only=False, decipher_only=False)

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    base = lambda subject, issuer, pub: (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)  # noqa: E731
                                         .public_key(pub).serial_number(x509.random_serial_number())
                                         .not_valid_before(now - datetime.timedelta(days=1))
                                         .not_valid_after(now + datetime.timedelta(days=30)))
    ca = (base(name("facecast test CA"), name("facecast test CA"), ca_key.public_key())
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(usage(False, True), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    cert = (base(name("facecast test signer"), name("facecast test CA"), key.public_key())
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(usage(True, False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    (folder / "chain.pem").write_bytes(cert.public_bytes(pem) + ca.public_bytes(pem))
    (folder / "key.pem").write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    return folder / "chain.pem", folder / "key.pem"


def test_c2pa_sign_and_verify(hopper_path, tmp_path):
    pytest.importorskip("c2pa", reason="c2pa-python is not installed (pip install 'facecast[c2pa]')")
    cert, key = _self_signed(tmp_path)
    out = tmp_path / "signed.mp4"
    r = run_cli("animate", hopper_path, "--preset", "talk", "--seconds", 1, "--size", 256, "-o", out,
                "--sign", cert, key)
    assert r.returncode == 0, r.stderr
    report = json.loads(run_cli("verify", out, "--json").stdout)
    c = report["c2pa"]
    assert c["present"] and c["valid"] and not c["trusted"] and c["synthetic"] and c["claim_generator"] == "facecast"
    assert report["found"] and report["metadata"]["synthetic"]
    # a changed byte in the pictures: the manifest no longer matches
    data = bytearray(out.read_bytes())
    data[data.find(b"mdat") + 3000] ^= 0xFF
    (tmp_path / "tampered.mp4").write_bytes(bytes(data))
    assert metadata.read_manifest(tmp_path / "tampered.mp4")["valid"] is False
    # signing checks its inputs before rendering
    r = run_cli("animate", hopper_path, "--preset", "talk", "-o", tmp_path / "x.webm", "--sign", cert, key)
    assert r.returncode == 2 and "--sign" in r.stderr and not (tmp_path / "x.webm").exists()


def _post(url, files, headers=None, timeout=120):
    """A multipart/form-data POST of `files` {name: (filename, bytes, type)} -> (status, body bytes)."""
    import urllib.error
    import urllib.request
    import uuid
    boundary = uuid.uuid4().hex
    body = b""
    for name, (filename, data, ctype) in files.items():
        body += (f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                 f"Content-Type: {ctype}\r\n\r\n").encode() + data + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    req = urllib.request.Request(url, data=body, method="POST",
                                 headers={"Content-Type": f"multipart/form-data; boundary={boundary}", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_http_render_is_marked_and_verify_endpoint(live_server, marked, hopper_path, speech, tmp_path):
    path, video_id = marked
    base = f"http://127.0.0.1:{live_server.port}"
    status, body = _post(base + "/api/verify", {"file": ("clip.mp4", path.read_bytes(), "video/mp4")})
    assert status == 200, body
    report = json.loads(body)
    assert report["found"] and report["watermark"]["payload"]["video_id"] == video_id and report["file"] == "clip.mp4"
    status, body = _post(base + "/api/verify", {"file": ("notes.mp4", b"not a video", "video/mp4")})
    assert status == 400 and set(json.loads(body)) == {"error"} and b"/tmp" not in body
    status, body = _post(base + "/api/verify", {"file": ("clip.mp4", b"x", "video/mp4")},
                         headers={"Origin": "https://evil.example"})
    assert status == 403 and set(json.loads(body)) == {"error"}
    # what the HTTP API renders is marked
    with open(hopper_path, "rb") as f:
        status, body = _post(base + "/api/render", {"image": ("hopper.jpg", f.read(), "image/jpeg"),
                                                    "audio": ("speech.wav", speech.read_bytes(), "audio/wav")})
    assert status == 200, body[:200]
    (tmp_path / "api.mp4").write_bytes(body)
    report = verify(tmp_path / "api.mp4")
    assert report["found"] and report["watermark"]["payload"]["video_id"] != video_id
    assert report["metadata"]["synthetic"]
