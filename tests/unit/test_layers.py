# SPDX-License-Identifier: GPL-3.0-or-later
"""The engine's imports point down, form no cycle and never reach another file's private names.

The layers come from the table in docs/ENGINE.md, so the map and the code cannot drift apart.
"""
import ast
import glob
import os

import pytest

import helpers

ENGINE = os.path.join(helpers.CHECKOUT, 'plugins', 'module_utils')
FACES = [os.path.join(helpers.CHECKOUT, 'bin', 'conductor_cli.py')] + sorted(
    glob.glob(os.path.join(helpers.CHECKOUT, 'plugins', 'modules', '*.py')))
PACKAGE = 'ansible_collections.cs695.conductor.plugins.module_utils'


def layer_map():
    """{module name: layer number} from the rows of docs/ENGINE.md's table: | 1 primitives | `_common.py` | ..."""
    layers = {}
    with open(os.path.join(helpers.CHECKOUT, 'docs', 'ENGINE.md')) as f:
        for line in f:
            cells = [c.strip() for c in line.strip().strip('|').split('|')]
            if len(cells) == 3 and cells[0][:1].isdigit() and cells[1].startswith('`_'):
                layers[cells[1].strip('`')[:-3]] = int(cells[0].split()[0])
    return layers


def engine_imports(source):
    """[(line, imported engine module, [names taken from it])], lazy imports included, and the
    private attributes read through a module bound by such an import: [(line, module, attribute)]."""
    tree = ast.parse(source)
    found, aliases = [], {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == PACKAGE:
            for alias in node.names:  # from ...module_utils import _x [as y]
                found.append((node.lineno, alias.name, []))
                aliases[alias.asname or alias.name] = alias.name
        elif isinstance(node, ast.ImportFrom) and (node.module or '').startswith(PACKAGE + '.'):
            found.append((node.lineno, node.module[len(PACKAGE) + 1:], [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(PACKAGE + '.'):
                    found.append((node.lineno, alias.name[len(PACKAGE) + 1:], []))
    private = [(node.lineno, aliases[node.value.id], node.attr) for node in ast.walk(tree)
               if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
               and node.value.id in aliases and node.attr.startswith('_') and not node.attr.startswith('__')]
    return found, private


def violations(sources, layers):
    """Every broken rule in {module name or face path: source}, as readable lines."""
    problems, graph = [], {}
    for name, source in sorted(sources.items()):
        found, private = engine_imports(source)
        for line, module, names in found:
            where = '%s:%d' % (name, line)
            if module not in layers:
                problems.append('%s imports %s, which docs/ENGINE.md does not place in a layer' % (where, module))
                continue
            if name in layers:
                graph.setdefault(name, set()).add(module)
                if layers[module] > layers[name]:
                    problems.append('%s imports %s upward (layer %d from layer %d)'
                                    % (where, module, layers[module], layers[name]))
            problems += ['%s takes the private name %s from %s' % (where, n, module) for n in names if n.startswith('_')]
        problems += ['%s:%d reads the private name %s of %s' % (name, line, attr, module)
                     for line, module, attr in private]
    problems += ['import cycle: %s' % ' -> '.join(cycle) for cycle in cycles(graph)]
    return problems


def cycles(graph):
    """Each cycle in graph {module: {imported, ...}} once, as a path that ends where it starts."""
    found, seen, done = [], set(), set()

    def visit(node, path):
        if node in path:
            cycle = path[path.index(node):] + [node]
            key = frozenset(cycle)
            if key not in seen:
                seen.add(key)
                found.append(cycle)
            return
        if node in done:
            return
        for nxt in sorted(graph.get(node, ())):
            if nxt != node:
                visit(nxt, path + [node])
        done.add(node)

    for node in sorted(graph):
        visit(node, [])
    return found


def read(path):
    with open(path) as f:
        return f.read()


def test_every_engine_file_has_a_layer():
    files = {os.path.basename(p)[:-3] for p in glob.glob(os.path.join(ENGINE, '_*.py'))}
    layers = layer_map()
    assert files - set(layers) == set(), 'engine files missing from the table in docs/ENGINE.md'
    assert set(layers) - files == set(), 'docs/ENGINE.md lists files that do not exist'


def test_imports_point_down_without_cycles_or_private_names():
    layers = layer_map()
    sources = {os.path.basename(p)[:-3]: read(p) for p in glob.glob(os.path.join(ENGINE, '_*.py'))}
    sources.update({os.path.relpath(p, helpers.CHECKOUT): read(p) for p in FACES})
    assert violations(sources, layers) == []


LAYERS = {'_common': 1, '_store': 2, '_containers': 3, '_network': 3, '_planning': 4}


@pytest.mark.parametrize('sources, problem', [
    ({'_common': 'from %s._store import Store\n' % PACKAGE},
     '_common:1 imports _store upward (layer 2 from layer 1)'),
    ({'_store': 'def f():\n    from %s import _planning\n' % PACKAGE},
     '_store:2 imports _planning upward (layer 4 from layer 2)'),
    ({'_containers': 'def start():\n    from %s._network import Network\n' % PACKAGE,
      '_network': 'from %s._containers import Containers\n' % PACKAGE},
     'import cycle: _containers -> _network -> _containers'),
    ({'_network': 'from %s._store import _remove\n' % PACKAGE},
     '_network:1 takes the private name _remove from _store'),
    ({'_network': 'from %s import _store as s\ns._remove("x")\n' % PACKAGE},
     '_network:2 reads the private name _remove of _store'),
    ({'_network': 'from %s import _nowhere\n' % PACKAGE},
     '_network:1 imports _nowhere, which docs/ENGINE.md does not place in a layer'),
])
def test_the_check_catches(sources, problem):
    """The rules above are checked for real: each kind of break is reported."""
    assert problem in violations(sources, LAYERS)


def test_the_check_passes_what_is_allowed():
    sources = {'_planning': 'from %s._store import Store\nfrom %s import _network\n' % (PACKAGE, PACKAGE),
               '_network': 'from %s._containers import Containers\n' % PACKAGE,
               'bin/cli.py': 'from %s._planning import ensure_container\n' % PACKAGE}
    assert violations(sources, LAYERS) == []
