from tests.factories import CaptionFactory, ImageFactory


def test_factories_build_rows_with_real_files(db):
    image = ImageFactory()
    caption = CaptionFactory(image=image, text="A red bus.")
    assert image.file.read(8) == b"\x89PNG\r\n\x1a\n"
    assert caption.image.project_id == image.project_id
