import pytest

from fms_dgt.errors import MissingDependencyError, RegistryError
from fms_dgt.registry import Registry, import_object


class A:
    pass


class B:
    pass


def test_register_get_alias_and_names():
    reg: Registry[type] = Registry("widget")
    reg.register("alpha", "a")(A)
    assert reg.get("alpha") is A
    assert reg.get("a") is A
    assert "alpha" in reg and "a" in reg
    assert list(reg) == ["alpha"]


def test_duplicate_registration_is_an_error_but_same_object_is_fine():
    reg: Registry[type] = Registry("widget")
    reg.add("alpha", A)
    reg.add("alpha", A)  # idempotent (module reload)
    with pytest.raises(RegistryError, match="registered twice"):
        reg.add("alpha", B)


def test_unknown_name_has_did_you_mean():
    reg: Registry[type] = Registry("widget")
    reg.add("exact_dedup", A)
    with pytest.raises(RegistryError) as err:
        reg.get("exact_dedupe")
    assert "did you mean 'exact_dedup'?" in str(err.value)
    assert "unknown widget" in str(err.value)


def test_lazy_entries_import_on_first_use():
    reg: Registry[type] = Registry("widget")
    reg.add("od", "collections:OrderedDict")
    import collections

    assert reg.get("od") is collections.OrderedDict
    assert reg.describe("od") == "collections:OrderedDict"


def test_lazy_entry_replaced_by_its_class_is_not_a_duplicate():
    reg: Registry[type] = Registry("widget")
    reg.add("a", f"{A.__module__}:{A.__qualname__}")
    reg.add("a", A)
    assert reg.get("a") is A


def test_import_object_errors(tmp_path, monkeypatch):
    with pytest.raises(RegistryError, match="no attribute"):
        import_object("collections:NoSuchThing")
    with pytest.raises(RegistryError, match="cannot import module"):
        import_object("surely_not_a_module_here.mod:X")
    # a module that exists but needs a package that is not installed names the pip command
    (tmp_path / "needs_dep_mod.py").write_text("import surely_not_installed_pkg\nclass X: pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(MissingDependencyError, match="pip install surely_not_installed_pkg"):
        import_object("needs_dep_mod:X")


def test_importing_fms_dgt_does_not_import_heavy_modules():
    import subprocess
    import sys

    code = (
        "import sys, fms_dgt, fms_dgt.engines, fms_dgt.blocks, fms_dgt.datastores, fms_dgt.formatters, fms_dgt.run;"
        "heavy=[m for m in ('vllm','torch','openai','transformers') if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
