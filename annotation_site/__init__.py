"""The RealQA annotation and curation platform (Django project).

Nothing here imports torch or `realqa_model`: a web process starts fast and small.
"""
