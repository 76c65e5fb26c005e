"""Search: a model's answer to the risk analyser's question ("chart", "photo": one word about
the kind of image, asked by review's risk flags) is not a caption, and no longer matches as one.

The search document (migration 0003) now leaves out succeeded captions that answer that question
(task 'question' with its exact prompt), and images that have such answers are re-indexed.
The prompt is copied here as it is today (``review.risk.captions.RISK_QUESTION``); a test
fails when that constant changes without a migration like this one.
"""

import importlib

from django.db import migrations

RISK_QUESTION = (
    "Is this image a chart or diagram, a screenshot of a screen or document, a medical image "
    "(X-ray, CT, MRI, ultrasound, microscopy, endoscopy, skin close-up) or an ordinary photo? "
    "Answer with one of: chart, screenshot, medical, photo."
)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


DOCUMENT = f"""
CREATE OR REPLACE FUNCTION labeling_image_search_document(
    p_id bigint, p_name text, p_format text, p_source text, p_detail text
) RETURNS tsvector LANGUAGE sql STABLE AS $$
    SELECT
        setweight(to_tsvector('english', coalesce((
            SELECT string_agg(r.final_text, ' ') FROM review_reviewitem r
            WHERE r.image_id = p_id AND r.state = 'approved'), '')), 'A')
     || setweight(to_tsvector('english', coalesce((
            SELECT string_agg(c.text, ' ') FROM routing_caption c
            WHERE c.image_id = p_id AND c.status = 'succeeded'
              AND NOT (c.task = 'question' AND c.prompt = {_literal(RISK_QUESTION)})), '')), 'B')
     || setweight(to_tsvector('english',
            regexp_replace(coalesce(p_name, ''), '[^[:alnum:]]+', ' ', 'g')), 'C')
     || setweight(to_tsvector('english', regexp_replace(
            concat_ws(' ', p_format, p_source, p_detail), '[^[:alnum:]]+', ' ', 'g')), 'D')
$$;
"""  # noqa: S608 - the constant above, quoted by _literal

REINDEX = f"""
UPDATE labeling_image i SET search_vector = labeling_image_search_document(
    i.id, i.original_name, i.format, i.source, i.source_detail)
WHERE i.id IN (
    SELECT c.image_id FROM routing_caption c
    WHERE c.task = 'question' AND c.status = 'succeeded'
        AND c.prompt = {_literal(RISK_QUESTION)}
);
"""  # noqa: S608 - the constant above, quoted by _literal


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(DOCUMENT + REINDEX)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        previous = importlib.import_module("labeling.migrations.0003_image_search")
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(previous.DOCUMENT + REINDEX)


class Migration(migrations.Migration):
    dependencies = [
        ("labeling", "0005_importbatch_predictions"),
        ("routing", "0002_chains_runs_calls"),
    ]

    operations = [migrations.RunPython(forward, backward, elidable=False)]
