"""Evidence discovery: folders, gzip, zip, nesting and zip bombs."""

import gzip
import io
import zipfile

from mailhunt.sources.inputs import iter_evidence

LINE = b'{"Id": "1", "Operation": "HardDelete"}\n'


def read_all(item):
    with item.open() as stream:
        return stream.read()


def test_folder_walk_is_recursive_and_sorted(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "z.json").write_bytes(LINE)
    (tmp_path / "a.json").write_bytes(LINE)
    (tmp_path / "b" / "c.json").write_bytes(LINE)
    names = [item.display for item in iter_evidence([tmp_path])]
    assert names == [str(tmp_path / "a.json"), str(tmp_path / "b" / "c.json"), str(tmp_path / "b" / "z.json")]


def test_gzip_recognized_by_magic_not_name(tmp_path):
    path = tmp_path / "audit.log"
    path.write_bytes(gzip.compress(LINE * 3))
    [item] = list(iter_evidence([path]))
    assert read_all(item) == LINE * 3
    assert item.problem is None


def test_zip_members_and_nested_zip(tmp_path):
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("deep/inner.json", LINE)
    path = tmp_path / "evidence.bin"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("one.json", LINE * 2)
        z.writestr("nested.zip", inner.getvalue())
        z.writestr("two.json.gz", gzip.compress(LINE))
    items = {item.display: item for item in iter_evidence([path])}
    assert set(items) == {f"{path}!one.json", f"{path}!nested.zip!deep/inner.json", f"{path}!two.json"}
    assert read_all(items[f"{path}!one.json"]) == LINE * 2
    assert read_all(items[f"{path}!nested.zip!deep/inner.json"]) == LINE
    assert read_all(items[f"{path}!two.json"]) == LINE


def test_zip_bomb_is_reported_not_expanded(tmp_path):
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("zeros.json", b"\0" * (64 * 1024 * 1024))
        z.writestr("ok.json", LINE)
    items = {item.display: item for item in iter_evidence([path])}
    bomb = items[f"{path}!zeros.json"]
    assert bomb.problem and "zip bomb" in bomb.problem
    assert items[f"{path}!ok.json"].problem is None
    assert read_all(items[f"{path}!ok.json"]) == LINE


def test_broken_zip_is_a_problem_not_a_crash(tmp_path):
    path = tmp_path / "broken.zip"
    path.write_bytes(b"PK\x03\x04" + b"garbage" * 10)
    [item] = list(iter_evidence([path]))
    assert item.problem and "zip" in item.problem
