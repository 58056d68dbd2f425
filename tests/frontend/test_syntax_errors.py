"""Every malformed `.snn` fixture gives one diagnostic with the expected code, words and position.

Expectations are written here by hand (counted from the fixture text), not derived from the parser.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from snnc.frontend.parser import _label_of, parse, parse_file
from snnc.frontend.syntax_errors import LABELS
from snnc.ir.diagnostics import DiagnosticError

FIXTURES = Path(__file__).parent / "invalid_syntax"

# name -> (code, message fragment, line, col)
CASES = {
    "spike_assign": ("E-SYNTAX", "`=` used in `spike when`; compare with `>=`", 4, 18),
    "unclosed_block": ("E-UNCLOSED", "expected '}' to close the block opened at 1:10", 3, 18),
    "unbalanced_paren": ("E-UNBALANCED", "unbalanced ')'", 3, 20),
    "mismatched_bracket": ("E-UNBALANCED", "expected ')' to close the '(' opened at 2:35", 2, 37),
    "unknown_statement": ("E-SYNTAX", "unknown statement 'parm'", 2, 5),
    "unknown_declaration": ("E-SYNTAX", "unknown declaration 'nueron'", 2, 1),
    "missing_value": ("E-SYNTAX", "missing value after '='", 2, 16),
    "missing_operand": ("E-SYNTAX", "missing operand after '/'", 3, 22),
    "double_equals": ("E-SYNTAX", "`==` compares; use `=`", 2, 12),
    "chained_comparison": ("E-SYNTAX", "comparisons cannot be chained", 3, 22),
    "spike_without_when": ("E-SYNTAX", "expected `when` after `spike`", 3, 11),
    "reset_without_braces": ("E-SYNTAX", "expected '{' after `reset`", 3, 11),
    "method_positional": ("E-SYNTAX", "method options are keyword arguments", 2, 20),
    "connection_missing_colon": ("E-SYNTAX", "expected ':' after the connection's target", 4, 12),
    "network_typo": ("E-SYNTAX", "unknown statement 'hiden' in a network", 2, 5),
    "same_line": ("E-SYNTAX", "missing newline or ';' before 'param'", 2, 17),
    "unterminated_string": ("E-SYNTAX", "unterminated string", 1, 5),
    "bad_escape": ("E-SYNTAX", "unknown escape '\\q' in string", 5, 25),
    "positional_after_keyword": ("E-SYNTAX", "positional argument after a keyword argument", 2, 37),
    "deep_nesting": ("E-NESTING", "nested too deeply", 2, 215),
    "invalid_char": ("E-SYNTAX", "unexpected character '@'", 2, 17),
    "unicode_name": ("E-SYNTAX", "unexpected character 'τ'", 2, 11),
    "missing_name": ("E-SYNTAX", "expected a name after 'neuron'", 1, 8),
    "unit_before_number": ("E-SYNTAX", "unexpected number '20' after 'ms'", 2, 20),
    "missing_operator": ("E-SYNTAX", "missing operator before name 'tau'", 4, 25),
    "assignment_outside_block": ("E-SYNTAX", "assignment to 'v' outside a block", 3, 5),
    "unclosed_call": ("E-UNCLOSED", "expected ')' to close the '(' opened at 2:21", 2, 33),
    "unclosed_nested_block": ("E-UNCLOSED", "expected '}' to close the block opened at 2:11", 3, 14),
    "role_without_name": ("E-SYNTAX", "expected a name after 'input'", 2, 11),
    "chained_assign": ("E-SYNTAX", "unexpected '='", 2, 16),
    "bang_not": ("E-SYNTAX", "unexpected character '!'", 3, 16),
    "nul_byte": ("E-ENCODING", "contains a NUL byte", 2, 8),
    "not_utf8": ("E-ENCODING", "byte 0xff, which is not UTF-8", 2, 3),
    "binary_garbage": ("E-ENCODING", "byte 0x80", 2, 118),
}


def test_every_fixture_has_an_expectation():
    assert sorted(p.stem for p in FIXTURES.glob("*.snn")) == sorted(CASES)
    assert len(CASES) >= 25


@pytest.mark.parametrize("name", sorted(CASES))
def test_fixture_diagnostic(name):
    code, fragment, line, col = CASES[name]
    path = FIXTURES / f"{name}.snn"
    with pytest.raises(DiagnosticError) as info:
        parse_file(path)
    [diag] = info.value.diagnostics
    assert diag.code == code, diag
    assert fragment in diag.message, diag
    assert (diag.span.line, diag.span.col) == (line, col), diag
    assert diag.span.file == str(path)
    rendered = diag.render({str(path): path.read_bytes().decode("utf-8", errors="replace")})
    assert f"{path}:{line}:{col}: error:" in rendered


def test_hints_name_the_likely_fix():
    hints = {
        "unknown_statement": "did you mean 'param'?",
        "unknown_declaration": "did you mean 'neuron'?",
        "network_typo": "did you mean 'hidden'?",
        "assignment_outside_block": "reset { ... }",
        "nul_byte": "binary file",
    }
    for name, fragment in hints.items():
        with pytest.raises(DiagnosticError) as info:
            parse_file(FIXTURES / f"{name}.snn")
        assert fragment in (info.value.diagnostics[0].hint or ""), name


def test_missing_file():
    with pytest.raises(DiagnosticError) as info:
        parse_file(FIXTURES / "no_such_file.snn")
    assert info.value.diagnostics[0].code == "E-FILE"
    assert "no such file" in info.value.diagnostics[0].message


@pytest.mark.parametrize("label", LABELS, ids=lambda label: label.name)
def test_each_labelled_example_gets_its_label(label):
    assert label.examples, "every label documents at least one bad snippet"
    for example in label.examples:
        chosen, diag = _label_of(example)
        assert chosen == label.name, (example, chosen, diag)
        assert diag.span is not None and diag.span.line >= 1


def test_end_of_file_inside_an_expression():
    with pytest.raises(DiagnosticError) as info:
        parse("neuron N {\n    param a = (1 +")
    diag = info.value.diagnostics[0]
    assert diag.code == "E-UNCLOSED"
    assert "opened at 2:15" in diag.message
    assert (diag.span.line, diag.span.col) == (2, 19)


def test_generic_message_lists_what_was_expected():
    with pytest.raises(DiagnosticError) as info:
        parse("neuron N { input i : }")
    diag = info.value.diagnostics[0]
    assert diag.message == "unexpected '}'; expected a name"
    assert (diag.span.line, diag.span.col) == (1, 22)
