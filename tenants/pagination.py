# Kept apart from tenants.scoping: DRF imports the pagination class while its own generics
# module loads, so this module must not import DRF's views.
from rest_framework import pagination


class Pagination(pagination.PageNumberPagination):
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100
