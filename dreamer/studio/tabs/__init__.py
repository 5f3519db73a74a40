"""The studio's tabs, one module each: `add(studio, ...)` lays out the tab's components
and wires its events, inside the page's `gr.Blocks`."""
