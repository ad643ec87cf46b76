"""README.md's Python example runs as printed (on the CPU: cuact's reference
path). The example is every ```python block between the markers
<!-- python-example:begin --> and <!-- python-example:end -->."""
import pathlib
import re

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"
BEGIN, END = "<!-- python-example:begin -->", "<!-- python-example:end -->"


def readme_examples():
    text = README.read_text()
    assert text.count(BEGIN) == text.count(END) >= 1, f"{README}: no {BEGIN} ... {END} markers"
    blocks = []
    for section in text.split(BEGIN)[1:]:
        body = section.split(END)[0]
        code = re.findall(r"^```python\n(.*?)^```$", body, flags=re.DOTALL | re.MULTILINE)
        assert code, f"{README}: no ```python block between {BEGIN} and {END}"
        blocks += code
    return blocks


def test_readme_python_example_runs_as_printed():
    for i, code in enumerate(readme_examples()):
        namespace = {"__name__": f"readme_example_{i + 1}"}
        exec(compile(code, f"README.md, python example {i + 1}", "exec"), namespace)
        assert any(not k.startswith("__") for k in namespace), "the example defined nothing"
