"""How Dagster finds lbx: one code location named `lbx`, whichever way the UI is started, and an
instance configuration outside the folder `dg dev` starts from (where it would be ignored)."""

import tomllib

import yaml
from dagster._core.workspace.load_target import WorkspaceFileTarget

from lbx_orchestration.core.settings import REPO_ROOT


def test_workspace_yaml_names_the_location_lbx() -> None:
    origins = WorkspaceFileTarget(paths=[str(REPO_ROOT / "workspace.yaml")]).create_origins()
    assert [origin.location_name for origin in origins] == ["lbx"]
    assert origins[0].loadable_target_origin.module_name == "lbx_orchestration.definitions"


def test_dg_and_dagster_project_settings_name_the_location_lbx() -> None:
    tool = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]
    assert tool["dg"]["directory_type"] == "project"
    assert tool["dg"]["project"]["code_location_name"] == "lbx"
    assert tool["dg"]["project"]["code_location_target_module"] == "lbx_orchestration.definitions"
    assert tool["dagster"]["code_location_name"] == "lbx"


def test_instance_configuration_is_copied_not_read_from_the_repo_root() -> None:
    # `dagster dev` / `dg dev` warn about (and ignore) a dagster.yaml in the folder they start from
    assert not (REPO_ROOT / "dagster.yaml").exists() and not (REPO_ROOT / "dagster.yml").exists()
    template = yaml.safe_load((REPO_ROOT / "config" / "dagster.yaml").read_text())
    assert template["concurrency"]["pools"]["default_limit"] == 1
    assert "config/dagster.yaml" in (REPO_ROOT / "Makefile").read_text()
