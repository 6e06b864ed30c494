# SPDX-License-Identifier: GPL-3.0-or-later
"""Cache keys and check-mode planning, without root: nothing here runs a step."""
import json
import os

import pytest

from ansible_collections.cs695.conductor.plugins.module_utils import _buildplan, _imagetasks
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
    plan = _buildplan.make_plan(store, 'img', parse(text), str(ctx), **kw)
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
        _buildplan.make_plan(store, 'img', parse('FROM debian:bookworm\nCOPY a /a'), None)
    with pytest.raises(ConductorError, match=r"no image named 'docker.io/library/alpine:3': pull it first \(conductor "
                                             r"pull docker.io/library/alpine:3\)"):
        _buildplan.make_plan(store, 'img', parse('FROM alpine:3'), None)
    with pytest.raises(ConductorError, match="invalid image reference 'Alpine:3'"):
        _buildplan.make_plan(store, 'img', parse('FROM Alpine:3'), None)
    with pytest.raises(ConductorError, match="no image named 'nosuch': build it first"):
        _buildplan.make_plan(store, 'img', parse('FROM nosuch'), None)
    with pytest.raises(ConductorError, match="image 'img' cannot be built FROM itself"):
        _buildplan.make_plan(store, 'img', parse('FROM img'), None)
    with pytest.raises(ConductorError, match="invalid image reference 'Bad/Name'"):
        _buildplan.make_plan(store, 'Bad/Name', parse('FROM debian:bookworm'), None)


def fake_cache(store, plan):
    """Mark every step of plan as built, as a real build would leave the store."""
    os.makedirs(store.path('bases', plan.base))
    for key in plan.layers:
        os.makedirs(store.path('layers', key))
        with open(store.path('layers', key, 'layer.json'), 'w') as f:
            json.dump({'key': key, 'id': key * 2, 'size': 1}, f)


def test_check_mode_reports_what_would_run(store, ctx):
    result = _imagetasks.ensure_image(store, 'img', instructions=FILE.splitlines(), context=str(ctx), check_mode=True)
    assert result['changed'] is True
    assert result['would_run'] == ['FROM debian:bookworm', 'COPY app /app', 'RUN make -C /app', 'RUN echo done']
    assert result['image']['id'] == '(built when run)'
    assert not os.path.exists(store.path('images'))

    fake_cache(store, _buildplan.make_plan(store, 'img', parse(FILE), str(ctx)))
    result = _imagetasks.ensure_image(store, 'img', instructions=FILE.splitlines(), context=str(ctx), check_mode=True)
    assert result['changed'] is True and result['would_run'] == []  # cached, but no manifest yet
    forced = _imagetasks.ensure_image(store, 'img', instructions=FILE.splitlines(), context=str(ctx), check_mode=True,
                                      force=True)
    assert len(forced['would_run']) == 3


def test_absent_in_check_mode_changes_nothing(store):
    result = _imagetasks.ensure_image(store, 'img', state='absent', check_mode=True)
    assert result == {'changed': False, 'image': {}, 'diff': {'before': {}, 'after': {}}}


MULTI = '''ARG SUITE=bookworm
FROM debian:${SUITE} AS tools
RUN make-tools
FROM debian:${SUITE} AS unused
RUN never
FROM debian:${SUITE}-slim
ARG GREETING=hello
USER nobody
COPY --from=tools /usr/local/bin/tool /usr/local/bin/
RUN echo $GREETING
'''


def plan_of(store, text, **kw):
    return _buildplan.make_plan(store, 'img', parse(text, 'Dockerfile', _buildplan.check_from), None, **kw)


def test_only_the_stages_the_image_needs_are_planned(store):
    plan = plan_of(store, MULTI)
    assert [s.instruction.text for s in plan.steps] == [
        'FROM debian:${SUITE} AS tools', 'RUN make-tools', 'FROM debian:${SUITE}-slim', 'USER nobody',
        'COPY --from=tools /usr/local/bin/tool /usr/local/bin/', 'RUN echo $GREETING']
    assert [s.number for s in plan.steps] == [1, 2, 3, 4, 5, 6]
    assert plan.stages[0].base == plan.stages[2].base, 'bookworm and bookworm-slim are one base'
    assert len(plan.layers) == 2 and plan.config == {'env': [], 'user': 'nobody'}


def test_build_args_user_and_the_copied_stage_are_in_the_keys(store):
    base = plan_of(store, MULTI).layers
    assert plan_of(store, MULTI, build_args={'GREETING': 'hi'}).layers[0] == base[0], 'ARG counts where it is used'
    assert plan_of(store, MULTI, build_args={'GREETING': 'hi'}).layers[1] != base[1], 'the RUN after ARG sees it'
    assert plan_of(store, MULTI.replace('USER nobody', 'USER daemon')).layers[0] != base[0]
    assert plan_of(store, MULTI.replace('RUN make-tools', 'RUN make-tools2')).layers[0] != base[0], \
        'a changed stage changes the COPY --from of it'
    assert plan_of(store, MULTI.replace('RUN never', 'RUN other')).layers == base, 'an unused stage changes nothing'
    with_shell = MULTI.replace('RUN echo', 'SHELL ["/bin/bash", "-c"]\nRUN echo')
    assert plan_of(store, with_shell).layers[1] != base[1]
    assert plan_of(store, MULTI, build_args={'NOPE': '1'}).warnings == [
        'build argument NOPE was given but no ARG uses it']
    assert plan_of(store, MULTI, build_args={'SUITE': 'trixie'}).stages[0].resolved == 'debian:trixie'


@pytest.mark.parametrize('text, message', [
    ('FROM debian:bookworm AS a\nCOPY --from=b /x /x\nFROM a AS b\nRUN true\n',
     r"Dockerfile:2: a cycle of stages \(b -> a -> b\): a stage can only use stages that do not use it"),
    ('FROM debian:bookworm AS a\nCOPY --from=a /x /x\n', r'Dockerfile:2: a cycle of stages \(a -> a\)'),
    ('FROM debian:bookworm AS a\nCOPY --from=nosuch /x /x\n',
     r"Dockerfile:2: nosuch is neither a stage of this file \(named stages: a\) nor a built image: no image named"),
    ('FROM debian:bookworm\nCOPY --from=3 /x /x\n', r'Dockerfile:2: COPY --from=3: there is no stage number 3'),
    ('FROM debian:bookworm AS a\nFROM debian:bookworm AS a\n', r'Dockerfile:2: a stage named a is already defined'),
    ('ARG V=bogus\nFROM debian:$V\n', r"Dockerfile:2: unknown debian tag 'bogus' in FROM debian:bogus: use one of"),
    ('FROM debian:bookworm\nWORKDIR ${A:?needs A}\n', r'Dockerfile:2: WORKDIR: A: needs A'),
    ('FROM debian:bookworm\nADD https://example.org/x.tgz /x\n',
     r'Dockerfile:2: ADD https://example.org/x.tgz: downloads are off: build with --allow-downloads'),
])
def test_stage_and_variable_errors(store, text, message):
    with pytest.raises(ConductorError, match=message):
        plan_of(store, text)


def test_a_bad_from_is_the_first_error(store):
    with pytest.raises(ConductorError, match=r"Dockerfile:1: unknown debian tag 'bogus' in FROM debian:bogus: use one "
                                             r"of .*12, 13.*stable"):
        parse('FROM debian:bogus\nFORM x\n', 'Dockerfile', _buildplan.check_from)
    with pytest.raises(ConductorError, match="Dockerfile:1: invalid image reference 'Alpine:3'"):
        parse('FROM Alpine:3\nRUN apk add x\nFORM y\n', 'Dockerfile', _buildplan.check_from)


def test_allowed_images_limit_from_and_copy_from_but_never_stages_or_bases(store):
    """Grading a student's Dockerfile: --allow-image base-only, and the file names the instructor's solution."""
    read = []

    def images(ref):
        read.append(ref)
        return {'id': ref * 8, 'base': 'b' * 32, 'layers': [], 'config': {}}
    text = 'FROM base-only\nCOPY --from=solution /answer /\n'
    with pytest.raises(ConductorError) as e:
        plan_of(store, text, images=images, allowed_images=['base-only'])
    assert str(e.value) == ("Dockerfile:2: COPY --from names the image 'solution', which this build may not use "
                            "(allowed: base-only): give --allow-image solution (the module's allowed_images) if it "
                            "may: 'COPY --from=solution /answer /'")
    assert read == ['base-only'], 'a refused image is never read: no oracle on which images exist'
    with pytest.raises(ConductorError, match="Dockerfile:1: FROM names the image 'solution', which this build may not "
                                             r"use \(allowed: none\)"):
        plan_of(store, 'FROM solution\n', images=images, allowed_images=[])
    assert plan_of(store, MULTI, allowed_images=[]).layers == plan_of(store, MULTI).layers, \
        'stages of the file and debootstrap bases are always allowed'
    assert plan_of(store, text, images=images, allowed_images=['base-only', 'solution']).steps[-1].copy_from
    assert plan_of(store, text, images=images).steps[-1].copy_from, 'the default: every image, as Docker'
    with pytest.raises(ConductorError, match="invalid image reference '../x'"):
        plan_of(store, 'FROM debian:bookworm\n', allowed_images=['../x'])


def test_the_modules_allowed_images_hold_in_check_mode(store):
    with pytest.raises(ConductorError, match="<instructions>:2: COPY --from names the image 'solution', which this "
                                             r"build may not use \(allowed: base-only\)"):
        _imagetasks.ensure_image(store, 'graded', instructions=['FROM debian:bookworm', 'COPY --from=solution / /'],
                                 allowed_images=['base-only'], check_mode=True)
    assert not os.path.exists(store.path('images'))


@pytest.mark.parametrize('flag, build, step', [
    ('', 'default', 'default'), ('', 'host', 'host'), ('', 'none', 'none'),
    ('--network=none ', 'default', 'none'), ('--network=none ', 'host', 'none'),
    ('--network=host ', 'host', 'host'), ('--network=default ', 'none', 'none')])
def test_each_run_steps_network_and_the_build_option_keep_the_keys(store, ctx, flag, build, step):
    text = 'FROM debian:bookworm\nRUN %secho hi\n' % flag
    plan = _buildplan.make_plan(store, 'img', parse(text), str(ctx), network=build)
    assert [s.network for s in plan.steps if s.makes_layer] == [step]
    assert keys(store, ctx, text, network=build) == keys(store, ctx, text, network='host')  # as in Docker


def test_run_network_host_needs_the_build_option(store, ctx):
    with pytest.raises(ConductorError, match=r"Conductorfile:2: RUN --network=host reaches the host's loopback .* "
                                             r"needs the build option --network host"):
        _buildplan.make_plan(store, 'img', parse('FROM debian:bookworm\nRUN --network=host true\n', 'Conductorfile'),
                             str(ctx))
    with pytest.raises(ConductorError, match='invalid build network'):
        _buildplan.make_plan(store, 'img', parse('FROM debian:bookworm\nRUN true\n'), str(ctx), network='bridge')
