"""The dashboard's form of a web source: the API's input rules (sources.api), so that both
interfaces accept and refuse the same sources."""

from django import forms
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from sources.api import WebSourceInput, WebSourceUpdateInput, checked_fields
from sources.models import WebSource
from tenants.forms import LinesField


class WebSourceForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200, required=False)
    url = forms.CharField(
        label=_("Start URL"), max_length=2000, help_text=_("The crawl starts here and stays on this site.")
    )
    sitemap_url = forms.CharField(
        label=_("Sitemap URL"),
        max_length=2000,
        required=False,
        help_text=_("Optional: crawl only the pages this sitemap lists (on the same site)."),
    )
    path_prefix = forms.CharField(
        label=_("Path prefix"),
        max_length=500,
        initial="/",
        help_text=_("Only pages whose path starts with this."),
    )
    include = LinesField(
        label=_("Include patterns"),
        rows=2,
        help_text=_("One per line, such as /help/*; when given, a page must match one."),
    )
    exclude = LinesField(
        label=_("Exclude patterns"),
        rows=2,
        help_text=_("One per line; a page that matches one is left out."),
    )
    selector = forms.CharField(
        label=_("Content CSS selector"),
        max_length=300,
        required=False,
        help_text=_("Optional, such as main article: keep only what it selects."),
    )
    max_pages = forms.IntegerField(label=_("Page limit"), min_value=1, initial=100)
    schedule = forms.ChoiceField(
        label=_("Re-sync"),
        choices=[("off", _("Off")), ("daily", _("Daily")), ("weekly", _("Weekly"))],
        initial="off",
    )

    def __init__(self, *args, tenant, source: WebSource | None = None, **kwargs):
        if source is not None and not args and "initial" not in kwargs:
            kwargs["initial"] = {
                "name": source.name,
                "url": source.url,
                "sitemap_url": source.sitemap_url,
                "path_prefix": source.scope_path,
                "include": source.include,
                "exclude": source.exclude,
                "selector": source.selector,
                "max_pages": source.max_pages,
                "schedule": source.schedule,
            }
        super().__init__(*args, **kwargs)
        self.tenant = tenant
        self.source = source
        self.fields_for_model: dict = {}

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        serializer = (WebSourceUpdateInput if self.source else WebSourceInput)(data=cleaned)
        if not serializer.is_valid():
            for field, errors in serializer.errors.items():
                self.add_error(field if field in self.fields else None, [str(error) for error in errors])
            return cleaned
        try:
            self.fields_for_model = checked_fields(
                dict(serializer.validated_data), tenant=self.tenant, source=self.source
            )
        except serializers.ValidationError as error:
            for field, errors in error.detail.items():
                self.add_error(field if field in self.fields else None, [str(message) for message in errors])
        return cleaned
