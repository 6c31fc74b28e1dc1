"""Tests of sobolev.experiment.files: atomic writes and tolerant CSV reads."""

import os
import signal
import stat
import subprocess
import sys
import time
from unittest import mock

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from sobolev.experiment import errors
from sobolev.experiment import files

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Appends numbered rows to a CSV file until killed.
_APPENDER = """
import sys
from sobolev.experiment import files
path, start = sys.argv[1], int(sys.argv[2])
i = start
while True:
  files.append_csv(path, [{"i": i, "value": i * 0.5, "text": "x" * 200}])
  i += 1
"""


class AtomicWriteTest(parameterized.TestCase, tf.test.TestCase):

  def test_write_text_round_trip_and_creates_directory(self):
    path = os.path.join(self.create_tempdir().full_path, "a", "b.txt")
    files.atomic_write_text(path, "héllo\n")
    with open(path, encoding="utf-8") as f:
      self.assertEqual(f.read(), "héllo\n")
    files.atomic_write_text(path, "second")
    with open(path, encoding="utf-8") as f:
      self.assertEqual(f.read(), "second")
    self.assertEqual(os.listdir(os.path.dirname(path)), ["b.txt"])

  @parameterized.parameters("write", "fsync", "replace")
  def test_failure_midway_keeps_the_old_file_and_no_temporary(self, where):
    directory = self.create_tempdir().full_path
    path = os.path.join(directory, "results.csv")
    files.atomic_write_text(path, "old contents\n")
    boom = OSError("disk full (simulated)")
    if where == "write":
      # The data is half written when the write fails.
      real_fdopen = os.fdopen

      class HalfFile:

        def __init__(self, fd, mode):
          self._f = real_fdopen(fd, mode)

        def write(self, data):
          self._f.write(data[:len(data) // 2])
          raise boom

        def __getattr__(self, name):
          return getattr(self._f, name)

        def __enter__(self):
          return self

        def __exit__(self, *exc):
          self._f.close()

      patch = mock.patch.object(os, "fdopen", HalfFile)
    elif where == "fsync":
      patch = mock.patch.object(os, "fsync", side_effect=boom)
    else:
      patch = mock.patch.object(os, "replace", side_effect=boom)
    with patch:
      with self.assertRaisesRegex(OSError, "disk full"):
        files.atomic_write_text(path, "new contents that never land\n" * 100)
    with open(path, encoding="utf-8") as f:
      self.assertEqual(f.read(), "old contents\n")
    self.assertEqual(os.listdir(directory), ["results.csv"])

  def test_interrupt_midway_leaves_no_file(self):
    directory = self.create_tempdir().full_path
    path = os.path.join(directory, "new.json")
    with mock.patch.object(os, "fsync", side_effect=KeyboardInterrupt):
      with self.assertRaises(KeyboardInterrupt):
        files.write_json(path, {"a": 1})
    self.assertEqual(os.listdir(directory), [])

  def test_new_file_gets_the_umask_mode_and_old_file_keeps_its_mode(self):
    directory = self.create_tempdir().full_path
    path = os.path.join(directory, "a.txt")
    files.atomic_write_text(path, "x")
    umask = os.umask(0o022)
    os.umask(umask)
    self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o666 & ~umask)
    os.chmod(path, 0o640)
    files.atomic_write_text(path, "y")
    self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o640)


class JsonTest(parameterized.TestCase, tf.test.TestCase):

  def test_round_trip_with_numpy_and_sets(self):
    path = os.path.join(self.create_tempdir().full_path, "x.json")
    files.write_json(path, {"b": np.float32(0.5), "a": np.arange(3),
                            "s": {3, 1}, "n": np.int64(7)})
    self.assertEqual(files.read_json(path),
                     {"a": [0, 1, 2], "b": 0.5, "n": 7, "s": [1, 3]})
    with open(path) as f:
      text = f.read()
    self.assertLess(text.index('"a"'), text.index('"b"'))  # Sorted keys.

  def test_missing_file_gives_default(self):
    path = os.path.join(self.create_tempdir().full_path, "none.json")
    self.assertIsNone(files.read_json(path))
    self.assertEqual(files.read_json(path, default={}), {})

  def test_garbled_file_raises_naming_it(self):
    path = self.create_tempfile("bad.json", content='{"a": 1').full_path
    with self.assertRaisesRegex(ValueError, "bad.json is not valid JSON"):
      files.read_json(path)

  @parameterized.parameters(
      ('{"a": 1', "line 1 column 8: Expecting ',' delimiter"),
      ("", "empty"), (b"\xff\xfe", "not UTF-8 text"))
  def test_garbled_file_is_a_corrupt_file_error_with_the_remedy(
      self, content, reason):
    path = os.path.join(self.create_tempdir().full_path, "bad.json")
    with open(path, "wb") as f:
      f.write(content if isinstance(content, bytes) else content.encode())
    with self.assertRaises(errors.CorruptFileError) as cm:
      files.read_json(path, remedy="delete it to redo that unit")
    self.assertEqual(str(cm.exception), f"{path} is not valid JSON "
                     f"({reason}); delete it to redo that unit.")
    self.assertIsInstance(cm.exception, errors.UserError)

  def test_a_folder_that_cannot_be_written_names_the_target_file(self):
    path = os.path.join(self.create_tempdir().full_path, "x.json")
    with mock.patch.object(files.tempfile, "mkstemp", side_effect=(
        PermissionError(13, "Permission denied", path + ".123.tmp"))):
      with self.assertRaises(PermissionError) as cm:
        files.write_json(path, {})
    self.assertEqual(cm.exception.filename, path)

  def test_unserialisable_object_raises_type_error(self):
    path = os.path.join(self.create_tempdir().full_path, "x.json")
    with self.assertRaisesRegex(TypeError, "object"):
      files.write_json(path, {"a": object()})
    self.assertFalse(os.path.exists(path))


class CsvTest(parameterized.TestCase, tf.test.TestCase):

  def _path(self, name="t.csv"):
    return os.path.join(self.create_tempdir().full_path, name)

  def test_write_read_round_trip_is_exact(self):
    path = self._path()
    rows = [{"a": 1, "b": 0.1 + 0.2, "c": "x,y\"z"},
            {"a": np.int64(2), "b": np.float64(1 / 3), "c": ""}]
    files.write_csv(path, rows)
    back = files.read_csv(path)
    self.assertEqual([r["a"] for r in back], ["1", "2"])
    self.assertEqual(float(back[0]["b"]), 0.1 + 0.2)  # repr round-trips.
    self.assertEqual(float(back[1]["b"]), 1 / 3)
    self.assertEqual(back[0]["c"], "x,y\"z")

  def test_write_with_fields_rejects_unknown_keys(self):
    path = self._path()
    with self.assertRaisesRegex(ValueError, "zzz"):
      files.write_csv(path, [{"a": 1, "zzz": 2}], fields=["a"])
    self.assertFalse(os.path.exists(path))

  def test_missing_and_empty_files_read_as_no_rows(self):
    path = self._path()
    self.assertEqual(files.read_csv(path), [])
    with open(path, "w"):
      pass
    self.assertEqual(files.read_csv(path), [])
    files.append_csv(path, [{"a": 1}])
    self.assertEqual(files.read_csv(path), [{"a": "1"}])

  @parameterized.parameters("1,2", "1", "1,2,3,4")
  def test_partial_last_line_is_dropped(self, last):
    path = self._path()
    with open(path, "w") as f:
      f.write(f"a,b,c\n1,2,3\n4,5,6\n{last}")
    with self.assertLogs(level="WARNING") as logs:
      rows = files.read_csv(path)
    self.assertEqual(rows, [{"a": "1", "b": "2", "c": "3"},
                            {"a": "4", "b": "5", "c": "6"}])
    self.assertIn("partial last line", "\n".join(logs.output))
    # The next append repairs the file.
    files.append_csv(path, [{"a": 7, "b": 8, "c": 9}])
    with open(path) as f:
      self.assertEqual(f.read(), "a,b,c\n1,2,3\n4,5,6\n7,8,9\n")

  @parameterized.named_parameters(
      ("nul_tail", b"4,5\0\0\0\0\0\0"),
      ("cut_utf8", "4,\u00e9t\u00e9,".encode("utf-8")[:-2]),
      ("cut_quote", b'4,"a\nb'))
  def test_crash_debris_after_the_last_line_is_dropped(self, tail):
    path = self._path()
    with open(path, "wb") as f:
      f.write("a,b,c\n1,\u00e9,3\n".encode("utf-8") + tail)
    with self.assertLogs(level="WARNING"):
      self.assertEqual(files.read_csv(path), [{"a": "1", "b": "\u00e9",
                                               "c": "3"}])
    files.append_csv(path, [{"a": 7, "b": 8, "c": 9}])
    self.assertLen(files.read_csv(path), 2)

  def test_bad_utf8_before_the_last_line_raises(self):
    path = self._path()
    with open(path, "wb") as f:
      f.write(b"a,b\n1,\xff\n2,3\n")
    with self.assertRaisesRegex(ValueError, "t.csv is not UTF-8 text"):
      files.read_csv(path)

  def test_crlf_and_quoted_newlines_read_back(self):
    path = self._path()
    with open(path, "wb") as f:
      f.write(b'a,b\r\n1,"x\r\ny"\r\n2,z\r\n')
    self.assertEqual(files.read_csv(path), [{"a": "1", "b": "x\r\ny"},
                                            {"a": "2", "b": "z"}])

  def test_malformed_middle_line_raises_naming_it(self):
    path = self._path()
    with open(path, "w") as f:
      f.write("a,b\n1,2\n3\n4,5\n")
    with self.assertRaisesRegex(ValueError, r"t\.csv: line 3 has 1 fields, "
                                r"the header has 2"):
      files.read_csv(path)

  def test_append_creates_with_preferred_order_and_adds_columns(self):
    path = self._path()
    files.append_csv(path, [{"b": 1, "a": 2}], fields=["a", "b"])
    files.append_csv(path, [{"a": 3, "c": "new"}])
    files.append_csv(path, [{"d": 0.5, "b": 4}])
    with open(path) as f:
      self.assertEqual(f.readline().strip(), "a,b,c,d")
    self.assertEqual(files.read_csv(path), [
        {"a": "2", "b": "1", "c": "", "d": ""},
        {"a": "3", "b": "", "c": "new", "d": ""},
        {"a": "", "b": "4", "c": "", "d": "0.5"},
    ])

  def test_append_many_rows_keeps_order(self):
    path = self._path()
    for i in range(5):
      files.append_csv(path, [{"i": 2 * i}, {"i": 2 * i + 1}])
    self.assertEqual([int(r["i"]) for r in files.read_csv(path)],
                     list(range(10)))


class KillTest(tf.test.TestCase):

  def test_kill_9_while_appending_leaves_a_whole_csv(self):
    path = os.path.join(self.create_tempdir().full_path, "progress.csv")
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep +
               os.environ.get("PYTHONPATH", ""))
    start = 0
    for round_ in range(3):
      proc = subprocess.Popen([sys.executable, "-c", _APPENDER, path,
                               str(start)], cwd=ROOT, env=env)
      try:
        deadline = time.time() + 120
        target = start + 20 + 7 * round_
        while time.time() < deadline:
          rows = files.read_csv(path)  # Concurrent reads see whole files.
          if len(rows) >= target:
            break
          time.sleep(0.01)
        else:
          self.fail(f"the appender wrote only {len(rows)} rows in 120 s")
      finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
      with open(path, encoding="utf-8") as f:
        text = f.read()
      self.assertTrue(text.endswith("\n"), msg=text[-300:])
      rows = files.read_csv(path)
      self.assertEqual([int(r["i"]) for r in rows], list(range(len(rows))))
      for r in rows:
        self.assertEqual(float(r["value"]), int(r["i"]) * 0.5)
        self.assertEqual(r["text"], "x" * 200)
      self.assertEqual(proc.returncode, -signal.SIGKILL)
      start = len(rows)  # Resume where the whole file ends.


if __name__ == "__main__":
  tf.test.main()
