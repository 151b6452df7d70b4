"""The networks of TRAJCROSS: trajectory encoder, image encoder, modality classifier."""
