"""Configuration: typed, strict, documented, overridable from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from adaptive_router import ConfigError, RoutingConfig, dump_default_config, load_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "router_config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_unknown_key_is_an_error_naming_key_file_and_guess(tmp_path: Path) -> None:
    path = write(tmp_path, "complexity_treshold: 0.7\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, use_env=False)
    message = str(info.value)
    assert str(path) in message
    assert "complexity_treshold" in message
    assert "did you mean 'complexity_threshold'" in message


def test_wrong_type_is_an_error_naming_the_key(tmp_path: Path) -> None:
    path = write(tmp_path, "latency_sla_ms: fast\n")
    with pytest.raises(ConfigError, match=r"router_config.yaml: 'latency_sla_ms'"):
        load_config(path, use_env=False)


def test_out_of_range_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="complexity_threshold"):
        load_config(write(tmp_path, "complexity_threshold: 1.5\n"), use_env=False)


def test_missing_file_and_bad_yaml_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path, "a: [1, 2\n"))
    with pytest.raises(ConfigError, match="mapping"):
        load_config(write(tmp_path, "- 1\n- 2\n"))


def test_yaml_values_are_used_and_service_section_is_left_to_the_service(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "complexity_threshold: 0.7\nvision_tiers: [tier_high]\nservice:\n  port: 9000\n",
    )
    config = load_config(path, use_env=False)
    assert config.complexity_threshold == 0.7
    assert config.vision_tiers == ("tier_high",)


def test_precedence_defaults_file_env_arguments(tmp_path: Path) -> None:
    path = write(tmp_path, "complexity_threshold: 0.7\nlatency_sla_ms: 1500\n")
    env = {"ROUTER_COMPLEXITY_THRESHOLD": "0.6", "ROUTER_VISION_TIERS": "tier_low,tier_high"}
    config = load_config(path, environ=env, latency_sla_ms=1200.0)
    assert config.complexity_threshold == 0.6  # env beats file
    assert config.latency_sla_ms == 1200.0  # argument beats file
    assert config.vision_tiers == ("tier_low", "tier_high")
    assert config.vram_headroom_gb == RoutingConfig().vram_headroom_gb  # default kept


def test_bad_environment_value_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="ROUTER_GPU_UTIL_POLLS"):
        load_config(environ={"ROUTER_GPU_UTIL_POLLS": "many"})


def test_constructor_rejects_unknown_keywords() -> None:
    with pytest.raises(ValueError, match="complexity_treshold"):
        RoutingConfig(complexity_treshold=0.5)  # type: ignore[call-arg]


def test_dump_default_config_documents_every_field_and_loads_back(tmp_path: Path) -> None:
    text = dump_default_config()
    for name, field in RoutingConfig.model_fields.items():
        assert f"\n{name}: " in text
        assert field.description, f"{name} has no description"
    assert load_config(write(tmp_path, text), use_env=False) == RoutingConfig()
    assert yaml.safe_load(text)["complexity_threshold"] == RoutingConfig().complexity_threshold
