# SPDX-License-Identifier: MIT
"""Reading a study's TOML (:mod:`invprior.study.config`): one dataclass per table, paths."""

import dataclasses
from pathlib import Path

import pytest
from tiny_study import study_toml

from invprior.cli import main
from invprior.infer import MCMCConfig
from invprior.infer.checkpoint import settings_of
from invprior.study import OutputConfig, SamplerConfig, StudyConfig, StudySettings


def test_config_rejects_unknown_keys():
    with pytest.raises(ValueError, match=r"unknown keys \['n_sensors'\] in \[sensors\]"):
        StudyConfig.from_dict({"sensors": {"n_sensors": 3}})
    with pytest.raises(ValueError, match="unknown tables"):
        StudyConfig.from_dict({"inference": {}})
    with pytest.raises(ValueError, match="kernel must be"):
        StudyConfig.from_dict({"mcmc": {"kernel": "mala"}})
    assert StudyConfig.from_dict({"mcmc": {"num_samples": 5}}).mcmc.num_samples == 5
    with pytest.raises(ValueError, match=r"\[mcmc\] num_samples must be >= 4"):
        StudyConfig.from_dict({"mcmc": {"num_samples": 3}})
    with pytest.raises(ValueError, match=r"\[baseline\] num_fields must be >= 2"):
        StudyConfig.from_dict({"baseline": {"num_fields": 1}})
    assert StudyConfig.from_dict({"baseline": {"enabled": False}}).baseline.num_fields == 2000
    assert StudyConfig.from_dict({}).pde.use_dense
    assert not StudyConfig.from_dict({"pde": {"kind": "conductivity"}}).pde.use_dense
    assert not StudyConfig.from_dict({"pde": {"dense": False}}).pde.use_dense
    with pytest.raises(ValueError, match=r"\[pde\] solver must be"):
        StudyConfig.from_dict({"pde": {"solver": "cg"}})
    with pytest.raises(ValueError, match="dense = true needs kind = 'source'"):
        StudyConfig.from_dict({"pde": {"kind": "conductivity", "dense": True}})


def test_each_table_is_the_field_named_after_it(tmp_path):
    """[study], [mcmc] and [output] are dataclasses too: no key of a table lands elsewhere."""
    path = tmp_path / "study.toml"
    path.write_text(
        '[study]\nseed = 3\nparallel_chains = true\n[mcmc]\nkernel = "hmc"\nnum_steps = 4\n'
        '[output]\nfolder = "out"\n'
    )
    config = StudyConfig.from_toml(path)
    assert config.study == StudySettings(seed=3, parallel_chains=True)
    assert config.output == OutputConfig(folder=tmp_path / "out")
    assert isinstance(config.output.folder, Path)
    assert config.mcmc == SamplerConfig(kernel="hmc", num_steps=4)
    assert isinstance(config.mcmc, MCMCConfig)  # passed as it is to infer.nuts/hmc/chees
    assert {f.name for f in dataclasses.fields(config.mcmc)} == {
        f.name for f in dataclasses.fields(MCMCConfig)
    } | {"kernel"}
    # the tables a file may hold are the fields, one to one
    with pytest.raises(ValueError, match="unknown tables") as err:
        StudyConfig.from_dict({"inference": {}})
    known = sorted(f.name for f in dataclasses.fields(StudyConfig))
    assert str(err.value).endswith(f"known: {known}")
    defaults = StudyConfig()
    assert defaults.study == StudySettings(seed=0, parallel_chains=False)
    assert (defaults.mcmc.kernel, defaults.output.folder) == ("nuts", Path("results/study"))
    # a run's checkpoint settings name every value by its table
    settings = settings_of(config)
    assert settings["[study] seed"] == "3" and settings["[mcmc] kernel"] == "'hmc'"
    assert settings["[output] folder"] == repr(tmp_path / "out")
    assert not {"seed", "kernel", "folder", "parallel_chains"} & set(settings)


def test_bad_config_file_exits_2(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text("[mesh]\nn = 1\n")
    assert main(["run", str(path)]) == 2
    assert "n must be >= 2" in capsys.readouterr().err


def test_readme_recipe_is_the_worked_example():
    """The README's TOML and CSV are the example's files, and the example's config loads."""
    import re

    root = Path(__file__).resolve().parents[2]
    section = (root / "README.md").read_text().split("### Your own data and physics", 1)[1]
    toml = re.findall(r"```toml\n(.*?)```", section, flags=re.S)[0]
    example = root / "examples" / "own_problem"
    assert toml == (example / "study.toml").read_text()
    head = re.findall(r"```csv\n(.*?)\.\.\.\n```", section, flags=re.S)[0]
    assert head in (example / "data.csv").read_text()
    config = StudyConfig.from_toml(example / "study.toml")
    assert config.data.file == str(example / "data.csv")
    assert config.pde.form == f"{example / 'physics.py'}:residual"
    assert config.pde.dirichlet == {1: 0.0} and config.pde.robin == {2: (5.0, 0.0)}
    assert config.baseline_simulator is None and config.noise.prior == "halfnormal"


def test_toml_paths_resolve_against_its_folder(tiny_prior, tmp_path, monkeypatch):
    """Every relative path of a TOML is relative to its folder, whatever the working one."""
    import shutil

    from invprior.study.setup import load_generator

    case = tmp_path / "case"
    (case / "priors").mkdir(parents=True)
    for suffix in (".json", ".safetensors"):
        shutil.copy(tiny_prior.with_suffix(suffix), case / "priors" / f"tiny{suffix}")
    text = study_toml("priors/tiny", "../out").replace("[mesh]\nn = 8\n", "")
    text += '[mesh]\nfile = "geometry/l.xdmf"\n[pde]\nform = "physics.py:residual"\n'
    (case / "study.toml").write_text(text)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    config = StudyConfig.from_toml("../case/study.toml")
    base = Path("../case")
    assert config.prior.name == str(base / "priors" / "tiny")
    folder = config.output.folder
    assert folder == base / ".." / "out" and folder.resolve() == tmp_path / "out"
    assert config.mesh.file == str(base / "geometry" / "l.xdmf")
    assert config.pde.form == f"{base / 'physics.py'}:residual"
    assert load_generator(config).grid.shape == (16, 16)  # found from another folder
    # shipped names, unknown bare names (misspelt shipped ones) and absolute paths stay
    shipped = StudyConfig.from_toml(
        _write(
            case / "shipped.toml",
            f'[prior]\nname = "source-auxvae"\n[output]\nfolder = "{tmp_path}"\n',
        )
    )
    assert shipped.prior.name == "source-auxvae" and shipped.output.folder == tmp_path
    typo = StudyConfig.from_toml(_write(case / "typo.toml", '[prior]\nname = "source-auxvea"\n'))
    assert typo.prior.name == "source-auxvea"
    with pytest.raises(ValueError, match=r"no shipped generator named 'source-auxvea'"):
        load_generator(typo)


def _write(path, text):
    path.write_text(text)
    return path
