"""Discovery of the rule catalog and rule selection (``--select`` / ``--ignore``)."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable
from functools import cache

from mllint.config import ConfigError, Settings
from mllint.rule import Rule


@cache
def all_rules() -> tuple[type[Rule], ...]:
    """Every rule class of ``mllint.rules``, ordered by code."""
    package = importlib.import_module("mllint.rules")
    found: dict[str, type[Rule]] = {}
    for module_info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{module_info.name}")
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, Rule) and value is not Rule and hasattr(value, "code"):
                if value.__module__ != module.__name__:
                    continue
                if value.code in found and found[value.code] is not value:
                    raise RuntimeError(f"rule code {value.code} defined twice")
                found[value.code] = value
    return tuple(found[code] for code in sorted(found))


def rule_by_code(code: str) -> type[Rule] | None:
    wanted = code.upper()
    return next((rule for rule in all_rules() if wanted in (rule.code, rule.name.upper())), None)


def _check_selectors(selectors: Iterable[str], option: str) -> None:
    codes = [rule.code for rule in all_rules()]
    for selector in selectors:
        if selector.upper() != "ALL" and not any(code.startswith(selector.upper()) for code in codes):
            raise ConfigError(f"unknown rule selector `{selector}` in `{option}`")


def _specificity(code: str, selectors: Iterable[str]) -> int:
    """Length of the longest selector matching ``code`` (0 for ALL, -1 for none)."""
    best = -1
    for selector in selectors:
        selector = selector.upper()
        if selector == "ALL":
            best = max(best, 0)
        elif code.startswith(selector):
            best = max(best, len(selector))
    return best


def is_selected(rule: type[Rule], select: Iterable[str] | None, ignore: Iterable[str]) -> bool:
    """ruff's resolution: the most specific selector wins, ``ignore`` on a tie."""
    enable = _specificity(rule.code, select) if select is not None else (0 if rule.default_enabled else -1)
    disable = _specificity(rule.code, ignore)
    return enable >= 0 and enable > disable


def selected_rules(settings: Settings) -> list[type[Rule]]:
    _check_selectors(settings.select or (), "select")
    _check_selectors(settings.extend_select, "extend-select")
    _check_selectors(settings.ignore, "ignore")
    select = None
    if settings.select is not None or settings.extend_select:
        base = (
            settings.select if settings.select is not None else tuple(r.code for r in all_rules() if r.default_enabled)
        )
        select = (*base, *settings.extend_select)
    return [rule for rule in all_rules() if is_selected(rule, select, settings.ignore)]
