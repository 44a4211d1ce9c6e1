def statement_fields(request) -> dict:
    """What a dispute form posts (opening one, or answering it): a statement and files."""
    return {
        "statement": request.POST.get("statement", ""),
        "files": request.FILES.getlist("evidence"),
    }
