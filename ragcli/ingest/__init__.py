"""Ingest: parse files, chunk them by structure, embed the chunks. Roles are in `protocols.py`.

    protocols.py                      Parser, Chunker, TokenCounter, Embedder (start here)
    build.py                          config -> parser, embedder, chunker
    unstructured_parser.py            UnstructuredParser: txt, md, html (main content), pdf, docx, pptx, epub
    plain_text_parser.py              PlainTextParser: text, Markdown, CSV, JSON, code without any library
    html_main_content.py              drop navigation and boilerplate from HTML pages
    file_checks.py                    empty / binary / encoding / encrypted-PDF checks; front matter, sidecars
    structure_chunker.py              StructureChunker: sections, paragraphs, sentences under a hard max
    chunking_profiles.py              limits per content type (prose, markdown, pdf, html, code, table)
    sentence_transformer_embedder.py  SentenceTransformerEmbedder: the packaged MiniLM (local, free)
    openai_embedder.py                OpenAIEmbedder: paid, only when a config names it
    hash_embedder.py                  HashEmbedder: a deterministic fake for tests
    ids.py                            document and chunk ids (deterministic, crash-safe)

The pipeline that runs them is `ragcli.pipelines.ingest_pipeline.ingest`.
"""
