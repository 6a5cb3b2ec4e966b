"""The review screen's logic without Qt: previews and comfort settings, the presenter."""
