"""language: keeps the expected languages, leaves short or uncertain texts alone."""

from __future__ import annotations

import pytest

from fms_dgt.blocks.language import LanguageFilter, detect_language
from fms_dgt.errors import ConfigError
from fms_dgt.registry import blocks as block_registry
from tests.blocks.conftest import QA, stream

EN = "Why does a plant on a windowsill slowly lean toward the glass over a few weeks?"
FR = "Pourquoi une plante posée sur le rebord de la fenêtre se penche-t-elle vers la vitre ?"
DE = "Warum neigt sich eine Pflanze auf der Fensterbank mit der Zeit zum Fenster hin?"


def test_detects_common_languages() -> None:
    assert detect_language(EN)[0] == "en"
    assert detect_language(FR)[0] == "fr"
    assert detect_language(DE)[0] == "de"


def test_keeps_listed_languages_only() -> None:
    block = LanguageFilter(languages=["en", "fr"], fields=["question"])
    kept, rejected = stream(block, [QA(question=EN), QA(question=FR), QA(question=DE)])
    assert [r.question for r in kept] == [EN, FR]
    assert rejected[0][1].startswith("wrong language: 'de'")


def test_short_and_uncertain_texts() -> None:
    block = LanguageFilter(languages="en", fields=["question"])
    assert block.check(QA(question="Hallo!")) is None  # under min_chars: not judged
    strict = LanguageFilter(languages="en", fields=["question"], min_confidence=1.01, keep_uncertain=False)
    assert "uncertain" in (strict.check(QA(question=DE)) or "")


def test_bad_config() -> None:
    with pytest.raises(ValueError, match="unknown language"):
        LanguageFilter(languages=["english"])
    with pytest.raises(ValueError, match="languages"):
        LanguageFilter(languages=[])
    assert block_registry.get("language") is LanguageFilter


def test_missing_package_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import fms_dgt.blocks.language as mod

    monkeypatch.setattr(mod, "_IDENTIFIER", None)
    monkeypatch.setitem(__import__("sys").modules, "py3langid.langid", None)
    with pytest.raises(ConfigError, match="py3langid") as info:
        LanguageFilter(languages="en")
    assert "pip install py3langid" in (info.value.hint or "")
