/* SPDX-License-Identifier: Apache-2.0 */
/*
 * layercheck.c — an empty program. The build links it with one folder's
 * whole static library and only the dependencies that folder may use;
 * any symbol from a layer below (or a library it must not call) is then
 * an undefined reference and the build fails.
 */
int main(void)
{
	return 0;
}
