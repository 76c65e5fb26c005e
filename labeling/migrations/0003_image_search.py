"""Full-text search over images (PostgreSQL only; SQLite searches by substring, see
labeling/search.py).

A ``search_vector`` tsvector column on labeling_image with a GIN index, kept current by triggers,
so every writer (services, bulk inserts, admin, other apps) keeps it right without code hooks:
- image insert, or a change of file name / format / source: the row's vector is rebuilt;
- a caption that succeeds, changes text, stops being succeeded or is deleted: its image's;
- a review item approved, un-approved or re-texted: its image's.
Pending captions and open review items (the bulk of inserts during a run) fire nothing.
"""

from django.db import migrations

DOCUMENT = """
CREATE OR REPLACE FUNCTION labeling_image_search_document(
    p_id bigint, p_name text, p_format text, p_source text, p_detail text
) RETURNS tsvector LANGUAGE sql STABLE AS $$
    SELECT
        setweight(to_tsvector('english', coalesce((
            SELECT string_agg(r.final_text, ' ') FROM review_reviewitem r
            WHERE r.image_id = p_id AND r.state = 'approved'), '')), 'A')
     || setweight(to_tsvector('english', coalesce((
            SELECT string_agg(c.text, ' ') FROM routing_caption c
            WHERE c.image_id = p_id AND c.status = 'succeeded'), '')), 'B')
     || setweight(to_tsvector('english',
            regexp_replace(coalesce(p_name, ''), '[^[:alnum:]]+', ' ', 'g')), 'C')
     || setweight(to_tsvector('english', regexp_replace(
            concat_ws(' ', p_format, p_source, p_detail), '[^[:alnum:]]+', ' ', 'g')), 'D')
$$;

CREATE OR REPLACE FUNCTION labeling_image_search_refresh(p_id bigint) RETURNS void
LANGUAGE sql AS $$
    UPDATE labeling_image SET search_vector = labeling_image_search_document(
        id, original_name, format, source, source_detail) WHERE id = p_id;
$$;

CREATE OR REPLACE FUNCTION labeling_image_search_on_image() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.search_vector := labeling_image_search_document(
        NEW.id, NEW.original_name, NEW.format, NEW.source, NEW.source_detail);
    RETURN NEW;
END $$;

CREATE OR REPLACE FUNCTION labeling_image_search_on_related() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM labeling_image_search_refresh(OLD.image_id);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND (TG_OP = 'INSERT' OR NEW.image_id <> OLD.image_id) THEN
        PERFORM labeling_image_search_refresh(NEW.image_id);
    END IF;
    RETURN NULL;
END $$;
"""

FORWARD = (
    # The column first: SQL functions are checked against the tables when they are created.
    "ALTER TABLE labeling_image ADD COLUMN search_vector tsvector;\n"
    + DOCUMENT
    + """
CREATE TRIGGER image_search_row BEFORE INSERT OR UPDATE OF original_name, format, source,
    source_detail ON labeling_image
    FOR EACH ROW EXECUTE FUNCTION labeling_image_search_on_image();

CREATE TRIGGER caption_search_insert AFTER INSERT ON routing_caption
    FOR EACH ROW WHEN (NEW.status = 'succeeded')
    EXECUTE FUNCTION labeling_image_search_on_related();
CREATE TRIGGER caption_search_update AFTER UPDATE OF text, status, image_id ON routing_caption
    FOR EACH ROW WHEN ((OLD.status = 'succeeded' OR NEW.status = 'succeeded')
        AND (OLD.text IS DISTINCT FROM NEW.text OR OLD.status IS DISTINCT FROM NEW.status
             OR OLD.image_id IS DISTINCT FROM NEW.image_id))
    EXECUTE FUNCTION labeling_image_search_on_related();
CREATE TRIGGER caption_search_delete AFTER DELETE ON routing_caption
    FOR EACH ROW WHEN (OLD.status = 'succeeded')
    EXECUTE FUNCTION labeling_image_search_on_related();

CREATE TRIGGER reviewitem_search_insert AFTER INSERT ON review_reviewitem
    FOR EACH ROW WHEN (NEW.state = 'approved')
    EXECUTE FUNCTION labeling_image_search_on_related();
CREATE TRIGGER reviewitem_search_update AFTER UPDATE OF state, final_text, image_id
    ON review_reviewitem
    FOR EACH ROW WHEN ((OLD.state = 'approved' OR NEW.state = 'approved')
        AND (OLD.state IS DISTINCT FROM NEW.state OR OLD.final_text IS DISTINCT FROM NEW.final_text
             OR OLD.image_id IS DISTINCT FROM NEW.image_id))
    EXECUTE FUNCTION labeling_image_search_on_related();
CREATE TRIGGER reviewitem_search_delete AFTER DELETE ON review_reviewitem
    FOR EACH ROW WHEN (OLD.state = 'approved')
    EXECUTE FUNCTION labeling_image_search_on_related();

UPDATE labeling_image SET search_vector = labeling_image_search_document(
    id, original_name, format, source, source_detail);

CREATE INDEX image_search_gin ON labeling_image USING gin (search_vector);
"""
)

BACKWARD = """
DROP TRIGGER IF EXISTS reviewitem_search_delete ON review_reviewitem;
DROP TRIGGER IF EXISTS reviewitem_search_update ON review_reviewitem;
DROP TRIGGER IF EXISTS reviewitem_search_insert ON review_reviewitem;
DROP TRIGGER IF EXISTS caption_search_delete ON routing_caption;
DROP TRIGGER IF EXISTS caption_search_update ON routing_caption;
DROP TRIGGER IF EXISTS caption_search_insert ON routing_caption;
DROP TRIGGER IF EXISTS image_search_row ON labeling_image;
DROP INDEX IF EXISTS image_search_gin;
ALTER TABLE labeling_image DROP COLUMN IF EXISTS search_vector;
DROP FUNCTION IF EXISTS labeling_image_search_on_related();
DROP FUNCTION IF EXISTS labeling_image_search_on_image();
DROP FUNCTION IF EXISTS labeling_image_search_refresh(bigint);
DROP FUNCTION IF EXISTS labeling_image_search_document(bigint, text, text, text, text);
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(FORWARD)  # several statements: no parameters, simple protocol


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(BACKWARD)


class Migration(migrations.Migration):
    dependencies = [
        ("labeling", "0002_export"),
        ("routing", "0001_initial"),
        ("review", "0002_queue"),
    ]

    operations = [migrations.RunPython(forward, backward, elidable=False)]
