"""Views of rendered units: which units and layers to show, figures with dataset examples,
and the browsable gallery site."""
