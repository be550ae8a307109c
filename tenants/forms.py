"""Form fields the apps' dashboard forms share."""

from django import forms


class LinesField(forms.CharField):
    """A textarea of one item a line, cleaned to the list of its lines that are not blank, each
    stripped of the white space around it (a browser's CRLF line breaks included). A list given as
    the initial value is shown one item a line. Optional unless `required=True`; limits on the
    items and their messages stay with each form's clean_<field>()."""

    def __init__(self, *, rows: int = 3, attrs: dict | None = None, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("widget", forms.Textarea(attrs={"rows": rows, **(attrs or {})}))
        super().__init__(**kwargs)

    def prepare_value(self, value):
        if isinstance(value, list | tuple):
            return "\n".join(value)
        return value

    def to_python(self, value) -> list[str]:
        return [line.strip() for line in super().to_python(value).splitlines() if line.strip()]
