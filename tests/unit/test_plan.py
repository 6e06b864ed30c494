"""Cache keys and check-mode planning, without root: nothing here runs a step."""
import json
import os

import pytest

from ansible_collections.cs695.conductor.plugins.module_utils import _builder, _planning
from ansible_collections.cs695.conductor.plugins.module_utils._common import ConductorError
from ansible_collections.cs695.conductor.plugins.module_utils._conductorfile import parse
from ansible_collections.cs695.conductor.plugins.module_utils._store import Store

FILE = 'FROM debian:bookworm\nCOPY app /app\nRUN make -C /app\nENV A=1\nRUN echo done\n'


@pytest.fixture
def ctx(tmp_path):
    app = tmp_path / 'ctx' / 'app'
    app.mkdir(parents=True)
    (app / 'main.c').write_text('int main() { return 0; }\n')
    (app / 'Makefile').write_text('all:\n')
    os.symlink('main.c', str(app / 'link.c'))
    return tmp_path / 'ctx'


@pytest.fixture
def store(tmp_path):
    return Store(str(tmp_path / 'root'), config={})


def keys(store, ctx, text=FILE, **kw):
    plan = _builder.make_plan(store, 'img', parse(text), str(ctx), **kw)
    return [s.key for s in plan.steps if s.makes_layer]


def test_keys_are_stable(store, ctx):
    assert keys(store, ctx) == keys(store, ctx)
    assert len(set(keys(store, ctx))) == 3


def test_content_change_changes_that_step_and_every_later_one(store, ctx):
    before = keys(store, ctx)
    (ctx / 'app' / 'main.c').write_text('int main() { return 1; }\n')
    after = keys(store, ctx)
    assert all(b != a for b, a in zip(before, after))


def test_mtime_alone_changes_nothing(store, ctx):
    before = keys(store, ctx)
    os.utime(str(ctx / 'app' / 'main.c'), (1, 1))
    assert keys(store, ctx) == before


@pytest.mark.parametrize('change', [
    lambda app: os.chmod(str(app / 'Makefile'), 0o755),
    lambda app: (os.unlink(str(app / 'link.c')), os.symlink('Makefile', str(app / 'link.c'))),
    lambda app: (app / 'new.h').write_text(''),
    lambda app: os.rename(str(app / 'Makefile'), str(app / 'GNUmakefile')),
])
def test_mode_link_target_and_names_count(store, ctx, change):
    before = keys(store, ctx)
    change(ctx / 'app')
    assert keys(store, ctx)[0] != before[0]


def test_instruction_and_env_count_but_not_spacing(store, ctx):
    base = keys(store, ctx)
    assert keys(store, ctx, FILE.replace('RUN echo done', 'RUN echo  done')) != base  # the shell text differs
    assert keys(store, ctx, FILE.replace('ENV A=1', 'ENV A=2'))[2] != base[2]
    assert keys(store, ctx, '# comment\n' + FILE.replace('COPY app /app', 'COPY  app   /app')) == base


def test_escaping_sources_are_refused(store, ctx, tmp_path):
    (tmp_path / 'secret').write_text('x')
    os.symlink(str(tmp_path / 'secret'), str(ctx / 'out'))
    for source, message in (('../secret', 'leads out of the build context'),
                            ('/etc/passwd', 'is an absolute path'),
                            ('out', 'leads through a symlink out of the build context'),
                            ('nothing', 'is not in the build context'),
                            ('*.none', 'is not in the build context')):
        with pytest.raises(ConductorError, match=message):
            keys(store, ctx, 'FROM debian:bookworm\nCOPY %s /x\n' % source)


def test_copy_without_context_and_unknown_from(store):
    with pytest.raises(ConductorError, match='COPY needs a build context'):
        _builder.make_plan(store, 'img', parse('FROM debian:bookworm\nCOPY a /a'), None)
    with pytest.raises(ConductorError, match="unknown distribution 'alpine' in FROM alpine:3"):
        _builder.make_plan(store, 'img', parse('FROM alpine:3'), None)
    with pytest.raises(ConductorError, match="no image named 'nosuch': build it first"):
        _builder.make_plan(store, 'img', parse('FROM nosuch'), None)
    with pytest.raises(ConductorError, match="image 'img' cannot be built FROM itself"):
        _builder.make_plan(store, 'img', parse('FROM img'), None)
    with pytest.raises(ConductorError, match="invalid image name 'bad/name'"):
        _builder.make_plan(store, 'bad/name', parse('FROM debian:bookworm'), None)


def fake_cache(store, plan):
    """Mark every step of plan as built, as a real build would leave the store."""
    os.makedirs(store.path('bases', plan.base))
    for key in plan.layers:
        os.makedirs(store.path('layers', key))
        with open(store.path('layers', key, 'layer.json'), 'w') as f:
            json.dump({'key': key, 'id': key * 2, 'size': 1}, f)


def test_check_mode_reports_what_would_run(store, ctx):
    result = _planning.ensure_image(store, 'img', instructions=FILE.splitlines(), context=str(ctx), check_mode=True)
    assert result['changed'] is True
    assert result['would_run'] == ['FROM debian:bookworm', 'COPY app /app', 'RUN make -C /app', 'RUN echo done']
    assert result['image']['id'] == '(built when run)'
    assert not os.path.exists(store.path('images'))

    fake_cache(store, _builder.make_plan(store, 'img', parse(FILE), str(ctx)))
    result = _planning.ensure_image(store, 'img', instructions=FILE.splitlines(), context=str(ctx), check_mode=True)
    assert result['changed'] is True and result['would_run'] == []  # cached, but no manifest yet
    forced = _planning.ensure_image(store, 'img', instructions=FILE.splitlines(), context=str(ctx), check_mode=True,
                                    force=True)
    assert len(forced['would_run']) == 3


def test_absent_in_check_mode_changes_nothing(store):
    result = _planning.ensure_image(store, 'img', state='absent', check_mode=True)
    assert result == {'changed': False, 'image': {}, 'diff': {'before': {}, 'after': {}}}
