"""LFR Workbench — Home page (placeholder until the app lands)."""

import streamlit as st

st.set_page_config(page_title="LFR Workbench", layout="wide")
st.title("LFR Workbench")
st.write("Research and evaluation workbench for live facial recognition.")
